#!/usr/bin/env bash
# The container procedure end to end, checked: build, train, serve, predict, load-test.
#   bash docker/e2e.sh          (MNIST_DATA=folder of IDX files; default ../shared/data/mnist)
# Prints its figures: build time, image sizes, time from `up` to healthy, the prediction
# from the host and the Locust summary line.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE=${COMPOSE:-$(docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)}
export MNIST_DATA=${MNIST_DATA:-$(realpath ../shared/data/mnist)}
export API_PORT=${API_PORT:-3000}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-mnist-e2e}
export COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1
# A local CPU torch wheel in docker/wheels (as on offline build machines) replaces the
# CPU index; without one, the default index URL in docker-compose.yml applies.
if ls docker/wheels/torch-*.whl >/dev/null 2>&1; then export TORCH_INDEX_URL=""; fi

log() { printf '\n== e2e: %s\n' "$*"; }
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

log "load test (Locust container against the api)"
mkdir -p reports && chmod a+rwx reports
$COMPOSE --profile loadtest run --rm --no-deps locust 2>&1 | tee /tmp/mnist-e2e-locust.log | grep -E "SLO|requests,|Aggregated"
grep -q "SLO PASS" /tmp/mnist-e2e-locust.log
ls reports/locust.html reports/locust_stats.csv >/dev/null

log "bentoml build + containerize (the bento image serves /predict too)"
if [ -x .venv/bin/bentoml ] && .venv/bin/bentoml models get mnist_mlp:latest >/dev/null 2>&1; then
  t0=$(date +%s)
  .venv/bin/bentoml build >/dev/null
  .venv/bin/bentoml containerize mnist:latest -t mnist-bento:latest >/dev/null
  bento_s=$(( $(date +%s) - t0 ))
  cid=$(docker run -d -p 127.0.0.1:3099:3000 mnist-bento:latest)
  for _ in $(seq 60); do curl -sf http://127.0.0.1:3099/readyz >/dev/null && break; sleep 1; done
  pred=$(curl -sf -F "image=@docker/sample-7.png" http://127.0.0.1:3099/predict || true)
  docker rm -f "$cid" >/dev/null
  echo "  bento image answered: ${pred:0:40}..."
  case "$pred" in '{"digit":7'*) ;; *) echo "e2e: bento image did not predict 7"; exit 1;; esac
  echo "bento build + containerize: ${bento_s}s"
else
  echo "  skipped: no .venv with mnist_mlp in \$BENTOML_HOME (run make train first)"
fi

log "figures"
echo "build: ${build_s}s; up -> api healthy (includes training): ${healthy_s}s"
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^mnist-(train|api|locust|bento):'
echo "e2e: PASS"
