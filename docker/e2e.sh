#!/usr/bin/env bash
# The container procedure end to end, checked: build, train, serve, predict (HTTP and
# the Open Inference Protocol over gRPC), feedback into PostgreSQL (and /predict while it
# is down), load-test.
#   bash docker/e2e.sh          (MNIST_DATA=folder of IDX files; default ../shared/data/mnist)
# The gRPC calls run in the project's venv (`make setup`: tritonclient[grpc]).
# Prints its figures: build time, image sizes, time from `up` to healthy, the prediction
# from the host and the Locust summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE=${COMPOSE:-$(docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)}
export MNIST_DATA=${MNIST_DATA:-$(realpath ../shared/data/mnist)}
export API_PORT=${API_PORT:-3000} GRPC_PORT=${GRPC_PORT:-8001}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-mnist-e2e}
export COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1
# A local CPU torch wheel in docker/wheels (as on offline build machines) replaces the
# CPU index; without one, the default index URL in docker-compose.yml applies.
if ls docker/wheels/torch-*.whl >/dev/null 2>&1; then export TORCH_INDEX_URL=""; fi

log() { printf '\n== e2e: %s\n' "$*"; }

# OIP over gRPC (Triton's client) on 127.0.0.1:$1: live and ready (within 30 s of
# /readyz), metadata, then one ModelInfer of 32 test digits, whose logits must be those
# of the OIP REST route on 127.0.0.1:$2 (the same model behind both transports).
grpc_check() {
  .venv/bin/python - "$1" "$2" "$MNIST_DATA" <<'PY'
import json, sys, time, urllib.request
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException
from core.contract import CONTRACT, MODEL_NAME
from core.data import load_idx_folder
grpc_port, http_port, data = sys.argv[1:4]
digits = load_idx_folder(data)
x, y = digits.test_images[:32].astype(np.float32), digits.test_labels[:32]
client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
for _ in range(30):
    try:
        if client.is_server_ready():
            break
    except InferenceServerException as exc:  # not listening yet
        print(f"  waiting for gRPC: {exc.message()}")
    time.sleep(1)
assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL_NAME)
meta = client.get_model_metadata(MODEL_NAME)
pixels = grpcclient.InferInput(meta.inputs[0].name, list(x.shape), "FP32")
pixels.set_data_from_numpy(x)
logits = client.infer(MODEL_NAME, [pixels]).as_numpy(CONTRACT.output_name)
body = {"inputs": [{"name": meta.inputs[0].name, "datatype": "FP32", "shape": list(x.shape),
                    "data": x.ravel().tolist()}], "outputs": [{"name": CONTRACT.output_name}]}
req = urllib.request.Request(f"http://127.0.0.1:{http_port}/v2/models/{MODEL_NAME}/infer",
                             json.dumps(body).encode(), {"Content-Type": "application/json"})
rest = json.load(urllib.request.urlopen(req, timeout=30))["outputs"][0]["data"]
same = np.allclose(logits, np.reshape(rest, logits.shape), rtol=1e-5, atol=1e-5)
print(f"  gRPC ModelInfer, {len(x)} test digits: {np.mean(logits.argmax(1) == y):.0%} right; "
      f"{meta.name} version {meta.versions[0]}; same logits as REST: {same}")
sys.exit(0 if same else 1)
PY
}
# POST docker/sample-7.png to the api's $1 (fields after it: -F name=value); prints the
# status code, keeps the body and the headers in /tmp/mnist-e2e-post.{body,headers}.
post() {
  local endpoint=$1; shift
  curl -s -o /tmp/mnist-e2e-post.body -D /tmp/mnist-e2e-post.headers -w '%{http_code}' \
    -F "image=@docker/sample-7.png" "$@" "http://127.0.0.1:$API_PORT/$endpoint" || true
}
# Waits up to $2 s for container $1 to be healthy.
wait_healthy() {
  for _ in $(seq "$2"); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$1")" = healthy ] && return 0
    sleep 1
  done
  docker logs --tail 20 "$1" >&2; return 1
}
# /feedback answers 200 and a row id (printed), within $1 s: the store connects again by
# itself once its database is back.
feedback_ok() {
  local code
  for _ in $(seq "$1"); do
    code=$(post feedback -F digit=7 -F answered=7)
    [ "$code" = 200 ] && break
    sleep 1
  done
  [ "$code" = 200 ] || { echo "e2e: /feedback answered $code: $(cat /tmp/mnist-e2e-post.body)" >&2; return 1; }
  python3 -c 'import json, sys; b = json.load(sys.stdin); assert type(b["id"]) is int and b["digit"] == 7, b; print(b["id"])' \
    < /tmp/mnist-e2e-post.body
}
cleanup() { $COMPOSE --profile loadtest down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

log "build (data: $MNIST_DATA)"
t0=$(date +%s)
$COMPOSE --profile loadtest build
build_s=$(( $(date +%s) - t0 ))

log "up: train, then api"
t0=$(date +%s)
$COMPOSE up -d
api=$($COMPOSE ps -q api)
train=$($COMPOSE ps -q train)
for _ in $(seq 300); do
  state=$(docker inspect -f '{{.State.Health.Status}}' "$api" 2>/dev/null || echo starting)
  [ "$state" = healthy ] && break
  if [ "$(docker inspect -f '{{.State.Status}}' "$train")" = exited ] \
     && [ "$(docker inspect -f '{{.State.ExitCode}}' "$train")" != 0 ]; then
    $COMPOSE logs train | tail -20; echo "e2e: training failed"; exit 1
  fi
  sleep 1
done
[ "$state" = healthy ] || { $COMPOSE logs | tail -40; echo "e2e: api not healthy"; exit 1; }
healthy_s=$(( $(date +%s) - t0 ))
$COMPOSE logs train | grep -E "test accuracy|registered:|done in"

log "predict from the host"
python3 - "$API_PORT" "$MNIST_DATA" <<'PY'
import gzip, io, json, struct, sys, urllib.request, uuid, zlib
port, data = sys.argv[1], sys.argv[2]
raw = gzip.open(f"{data}/t10k-images-idx3-ubyte.gz").read()[16:16 + 784 * 5]
labels = gzip.open(f"{data}/t10k-labels-idx1-ubyte.gz").read()[8:13]
def png(px):  # a minimal grayscale PNG, no Pillow needed on the host
    rows = b"".join(b"\x00" + px[r * 28:(r + 1) * 28] for r in range(28))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
ok = 0
for i in range(5):
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png(raw[i * 784:(i + 1) * 784]) \
        + f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", body,
                                 {"Content-Type": f"multipart/form-data; boundary={b}"})
    digit = json.load(urllib.request.urlopen(req, timeout=10))["digit"]
    ok += digit == labels[i]
    print(f"  test digit {i}: true {labels[i]} -> predicted {digit}")
sys.exit(0 if ok >= 4 else 1)
PY

log "feedback into PostgreSQL; /predict without it; nothing acknowledged lost"
pg=$($COMPOSE ps -q postgres)
wait_healthy "$pg" 60 || { echo "e2e: postgres not healthy"; exit 1; }
first_id=$(feedback_ok 10)
echo "  /feedback: 200, row $first_id"
$COMPOSE stop postgres >/dev/null
predict_code=$(post predict)
[ "$predict_code" = 200 ] || { echo "e2e: /predict answered $predict_code with the database down"; exit 1; }
code=$(post feedback -F digit=7)
retry=$(grep -i '^retry-after:' /tmp/mnist-e2e-post.headers | tr -dc 0-9)
echo "  database stopped: /predict $predict_code; /feedback $code $(cat /tmp/mnist-e2e-post.body), Retry-After ${retry:-none}"
# compose leaves MNIST_FEEDBACK_RETRY_AFTER_S unset: the setting's default applies.
want_retry=$(.venv/bin/python -c \
  "from service.settings import Settings; print(Settings.model_fields['feedback_retry_after_s'].default)")
[ "$code" = 503 ] && [ "$retry" = "$want_retry" ] \
  || { echo "e2e: /feedback must answer 503 with Retry-After: $want_retry"; exit 1; }
$COMPOSE start postgres >/dev/null
wait_healthy "$pg" 60 || { echo "e2e: postgres not healthy after its restart"; exit 1; }
again_id=$(feedback_ok 30)
echo "  database back: /feedback 200, row $again_id"
kept=$(docker exec "$pg" psql -d mnist -Atc "select count(*) from feedback where id = $first_id")
echo "  row $first_id after the restart: $kept of 1; rows: $(docker exec "$pg" psql -d mnist -Atc 'select count(*) from feedback')"
[ "$kept" = 1 ] || { echo "e2e: the acknowledged row $first_id is gone"; exit 1; }

log "OIP over gRPC from the host (port $GRPC_PORT)"
.venv/bin/python -c "import tritonclient.grpc" 2>/dev/null \
  || { echo "e2e: no tritonclient[grpc] in .venv: run make setup"; exit 1; }
grpc_check "$GRPC_PORT" "$API_PORT" || { echo "e2e: gRPC inference failed"; exit 1; }

log "load test (Locust container against the api)"
mkdir -p reports && chmod a+rwx reports
$COMPOSE --profile loadtest run --rm --no-deps locust 2>&1 | tee /tmp/mnist-e2e-locust.log | grep -E "SLO|requests,|Aggregated"
grep -q "SLO PASS" /tmp/mnist-e2e-locust.log
ls reports/locust.html reports/locust_stats.csv >/dev/null

log "bentoml build + containerize (the bento image serves /predict and gRPC too)"
if [ -x .venv/bin/bentoml ] && .venv/bin/bentoml models get mnist_mlp:latest >/dev/null 2>&1; then
  t0=$(date +%s)
  .venv/bin/bentoml build >/dev/null
  .venv/bin/bentoml containerize mnist:latest -t mnist-bento:latest >/dev/null
  bento_s=$(( $(date +%s) - t0 ))
  # The image serves gRPC on the setting's default port (it sets no MNIST_GRPC_PORT).
  grpc_in_image=$(.venv/bin/python -c \
    "from service.settings import Settings; print(Settings.model_fields['grpc_port'].default)")
  cid=$(docker run -d -p 127.0.0.1:3099:3000 -p "127.0.0.1:3098:$grpc_in_image" mnist-bento:latest)
  for _ in $(seq 60); do curl -sf http://127.0.0.1:3099/readyz >/dev/null && break; sleep 1; done
  pred=$(curl -sf -F "image=@docker/sample-7.png" http://127.0.0.1:3099/predict || true)
  grpc_ok=1; grpc_check 3098 3099 || grpc_ok=0
  docker rm -f "$cid" >/dev/null
  echo "  bento image answered: ${pred:0:40}..."
  case "$pred" in '{"digit":7'*) ;; *) echo "e2e: bento image did not predict 7"; exit 1;; esac
  [ "$grpc_ok" = 1 ] || { echo "e2e: bento image's gRPC inference failed"; exit 1; }
  echo "bento build + containerize: ${bento_s}s"
else
  echo "  skipped: no .venv with mnist_mlp in \$BENTOML_HOME (run make train first)"
fi

log "figures"
echo "build: ${build_s}s; up -> api healthy (includes training): ${healthy_s}s"
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^mnist-(train|api|locust|bento|postgres):'
echo "e2e: PASS"
