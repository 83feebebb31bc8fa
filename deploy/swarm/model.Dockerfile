# The deployable unit: the service image with one verified model in its store.
#   built by deploy/swarm/swarm.sh (image), from a context holding store/models/<name>/<version>
ARG API_BASE=mnist-api:cpu
FROM ${API_BASE}
ARG MODEL_TAG
# Optional: a second version in the store, scored in shadow (service/shadow.py).
ARG CHALLENGER_TAG=
COPY --chown=mnist:mnist store/ /models/
# The folders BentoML creates in its home at start: the root filesystem is read-only then.
USER root
RUN mkdir -p /models/bentos /models/envs /models/tmp && chown -R mnist:mnist /models
USER mnist
# This image serves exactly the model it was built with, never "latest" of a volume.
ENV MNIST_MODEL_TAG=${MODEL_TAG} MNIST_CHALLENGER_TAG=${CHALLENGER_TAG}
LABEL org.opencontainers.image.title="mnist api" ai.mnist.model="${MODEL_TAG}" ai.mnist.challenger="${CHALLENGER_TAG}"
