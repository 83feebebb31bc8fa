#!/usr/bin/env bash
# Docker Swarm: stack `mnist` (api replicas behind HAProxy), model rollouts, removal.
#   deploy/swarm/swarm.sh up           build what is missing, train if no model, deploy
#   deploy/swarm/swarm.sh rollout      train a new model version, build its image, roll out
#   deploy/swarm/swarm.sh image        train a new model version and build its image only
#   deploy/swarm/swarm.sh update IMG   roll out an image (exit 1 when Swarm rolled it back)
#   deploy/swarm/swarm.sh model-image V [C]  build the image of store version V (with
#                                      version C as its challenger in shadow); prints it
#   deploy/swarm/swarm.sh down         remove the stack (and the swarm, if `up` created it)
# Called by `make swarm-up|swarm-rollout|swarm-down`. Settings: API_REPLICAS (2),
# SWARM_PORT (8080, HTTP), SWARM_GRPC_PORT (8001, the OIP gRPC service),
# SWARM_PROMETHEUS_PORT (9090, Prometheus), SWARM_POSTGRES_PORT (5432, the feedback
# database, for the retraining job), POSTGRES_PASSWORD (set it before the first `up`: the
# database keeps the one it was created with), TRAIN_ARGS, BENTOML_HOME (the model store).
set -euo pipefail
cd "$(dirname "$0")/../.."

STACK=${STACK:-mnist}
export API_REPLICAS=${API_REPLICAS:-2} SWARM_PORT=${SWARM_PORT:-8080}
export SWARM_GRPC_PORT=${SWARM_GRPC_PORT:-8001} SWARM_PROMETHEUS_PORT=${SWARM_PROMETHEUS_PORT:-9090}
export SWARM_POSTGRES_PORT=${SWARM_POSTGRES_PORT:-5432}
export BENTOML_HOME=${BENTOML_HOME:-$PWD/bentoml_home}
PYTHON=${PYTHON:-.venv/bin/python}
MODEL=${MODEL:-mnist_mlp}
API_BASE=${API_BASE:-mnist-api:cpu}   # mnist-api:gpu for GPU nodes
MODEL_REPO=${MODEL_REPO:-mnist-api-model}   # mnist-api-model-gpu for GPU nodes
PROXY_IMAGE=${PROXY_IMAGE:-mnist-proxy:latest}
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-mnist-prometheus:latest}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-mnist-postgres:latest}
# Marks a swarm this script created, so that `down` leaves any other swarm alone.
CREATED_MARK=${CREATED_MARK:-/tmp/mnist-swarm-created-by-us}

log() { printf '== swarm: %s\n' "$*" >&2; }
die() { printf 'swarm: %s\n' "$*" >&2; exit 1; }

ensure_swarm() {
  case "$(docker info --format '{{.Swarm.LocalNodeState}}')" in
    active) ;;
    inactive)
      log "no swarm here: creating a single-node one (removed again by 'down')"
      docker swarm init --advertise-addr 127.0.0.1 >/dev/null
      touch "$CREATED_MARK" ;;
    *) die "this Docker engine's swarm state is $(docker info --format '{{.Swarm.LocalNodeState}}')" ;;
  esac
}

ensure_images() {
  if ! docker image inspect "$API_BASE" >/dev/null 2>&1; then
    log "building $API_BASE"
    docker build -q -f service/Dockerfile -t "$API_BASE" . >/dev/null
  fi
  # Always (cached when nothing changed): the proxy's configuration is part of the image.
  docker build -q -t "$PROXY_IMAGE" deploy/swarm/proxy >/dev/null
  # Likewise Prometheus's configuration and rules (deploy/prometheus).
  docker build -q -t "$PROMETHEUS_IMAGE" deploy/prometheus >/dev/null
  # And the feedback database's entrypoint (deploy/postgres).
  docker build -q -t "$POSTGRES_IMAGE" deploy/postgres >/dev/null
}

latest_version() {  # the store's latest version of the model, or nothing
  cat "$BENTOML_HOME/models/$MODEL/latest" 2>/dev/null || true
}

train() {
  log "training a model version (TRAIN_ARGS=${TRAIN_ARGS:-})"
  # shellcheck disable=SC2086  # TRAIN_ARGS is a list of options
  "$PYTHON" -m training --output-dir "${ARTIFACTS:-artifacts}" ${TRAIN_ARGS:-} >&2
}

model_image() {  # the image of one model version (and of a challenger scored in shadow)
  local version=$1 challenger=${2:-} ctx tag
  ctx=$(mktemp -d)
  mkdir -p "$ctx/store/models/$MODEL"
  for v in "$version" $challenger; do
    [ -d "$BENTOML_HOME/models/$MODEL/$v" ] || die "no model version $v in $BENTOML_HOME"
    cp -r "$BENTOML_HOME/models/$MODEL/$v" "$ctx/store/models/$MODEL/"
  done
  printf '%s' "$version" > "$ctx/store/models/$MODEL/latest"
  tag="$MODEL_REPO:$version${challenger:+-shadow-$challenger}"
  docker build -q -f deploy/swarm/model.Dockerfile --build-arg "API_BASE=$API_BASE" \
    --build-arg "MODEL_TAG=$MODEL:$version" \
    --build-arg "CHALLENGER_TAG=${challenger:+$MODEL:$challenger}" -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "$tag"
}

wait_converged() {  # every api replica running (healthy: the image has a HEALTHCHECK)
  local want=$1 deadline=$((SECONDS + ${2:-300})) running failed
  while (( SECONDS < deadline )); do
    # Failures of the image now specified (older tasks' failures are history).
    failed=$(docker service ps "${STACK}_api" --format '{{.Image}} {{.Error}}' \
      | grep -F "$(docker service inspect "${STACK}_api" --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' | cut -d@ -f1) " \
      | grep -c 'non-zero exit' || true)
    if (( failed > 3 * want )) && [ "${EXPECT_FAILURES:-0}" = 0 ]; then
      docker service logs --raw --tail 5 "${STACK}_api" >&2 || true
      die "api replicas keep failing ($failed failed tasks): see the log lines above"
    fi
    running=$(docker service ps "${STACK}_api" --filter desired-state=running \
      --format '{{.CurrentState}}' | grep -c '^Running' || true)
    if [ "$running" = "$want" ] && curl -sf "http://127.0.0.1:$SWARM_PORT/readyz" >/dev/null \
       && curl -sf "http://127.0.0.1:$SWARM_PORT/proxy/health" >/dev/null; then
      return 0
    fi
    sleep 1
  done
  docker service ps --no-trunc "${STACK}_api" >&2 || true
  die "the stack did not become healthy in time"
}

served_tag() { curl -sf "http://127.0.0.1:$SWARM_PORT/model" | "$PYTHON" -c \
  'import json,sys; print(json.load(sys.stdin)["tag"])'; }

cmd_up() {
  ensure_swarm
  ensure_images
  [ -n "$(latest_version)" ] || train
  local image
  image=$(model_image "$(latest_version)")
  log "deploying stack $STACK: $API_REPLICAS x $image behind $PROXY_IMAGE on :$SWARM_PORT"
  API_IMAGE=$image PROXY_IMAGE=$PROXY_IMAGE PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE \
    POSTGRES_IMAGE=$POSTGRES_IMAGE docker stack deploy --resolve-image never \
    -c deploy/swarm/stack.yml "$STACK" >/dev/null
  wait_converged "$API_REPLICAS"
  log "ready: http://127.0.0.1:$SWARM_PORT serves $(served_tag); gRPC on 127.0.0.1:$SWARM_GRPC_PORT;"
  log "Prometheus on http://127.0.0.1:$SWARM_PROMETHEUS_PORT;"
  log "feedback database: postgresql://mnist:...@127.0.0.1:$SWARM_POSTGRES_PORT/mnist"
}

cmd_image() {
  train
  model_image "$(latest_version)"
}

cmd_update() {
  local image=${1:?usage: swarm.sh update IMAGE} state replicas
  replicas=$(docker service inspect "${STACK}_api" --format '{{.Spec.Mode.Replicated.Replicas}}')
  log "rolling out $image, one replica at a time (start-first, rollback on failure)"
  # Blocks until converged or rolled back; the update's own state says which.
  docker service update --detach=false --quiet --image "$image" "${STACK}_api" >&2 || true
  state=$(docker service inspect "${STACK}_api" --format '{{.UpdateStatus.State}}')
  EXPECT_FAILURES=1 wait_converged "$replicas"
  if [ "$state" = completed ]; then
    log "converged: every replica runs $image; the proxy serves $(served_tag)"
  else
    log "NOT rolled out ($state): the stack still serves $(served_tag)"
    return 1
  fi
}

cmd_rollout() {
  local image
  image=$(cmd_image)
  cmd_update "$image"
}

cmd_down() {
  if docker stack ls --format '{{.Name}}' 2>/dev/null | grep -qx "$STACK"; then
    log "removing stack $STACK"
    docker stack rm "$STACK" >/dev/null
    for _ in $(seq 60); do  # its network goes last
      docker network ls --format '{{.Name}}' | grep -q "^${STACK}_" || break
      sleep 1
    done
  fi
  if [ -e "$CREATED_MARK" ]; then
    log "leaving the swarm that 'up' created"
    docker swarm leave --force >/dev/null
    rm -f "$CREATED_MARK"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  image) cmd_image ;;
  update) shift; cmd_update "$@" ;;
  model-image) shift; model_image "${1:?usage: swarm.sh model-image VERSION [CHALLENGER]}" "${2:-}" ;;
  rollout) cmd_rollout ;;
  down) cmd_down ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
