"""MNIST inference service (BentoML + onnxruntime): bentoml serve service.service:MNISTService"""
