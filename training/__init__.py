"""MNIST training job: python -m training --help"""
