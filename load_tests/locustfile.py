"""Load test of the MNIST service: real digits, every answer checked, SLO gate on quit.

    locust --config load_tests/locust.conf --host http://127.0.0.1:3000
    locust --config load_tests/locust.conf --host http://127.0.0.1:3000 --load-profile spike -t 2m

Users POST real test digits as PNGs to /predict (the majority), batches to
/predict_batch and pixel JSON to /predict_pixels. A response counts as failed
when its status or schema is wrong; predicted digits are compared with the true
labels to report (and gate on) accuracy under load. The process exits 1 when an
SLO in load_tests/slo.py is violated.
"""

from __future__ import annotations

import json
import random
from dataclasses import fields

from locust import FastHttpUser, between, events, task
from locust.env import Environment

from load_tests.payloads import Payloads, build
from load_tests.shapes import PROFILES, ProfileShape  # noqa: F401  (locust picks up the shape)
from load_tests.slo import SLO, Accuracy, summary, violations

PREDICTION_KEYS = {"digit", "confidence", "probabilities"}


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    g = parser.add_argument_group("MNIST load test")
    g.add_argument("--load-profile", choices=PROFILES, default="steady",
                   env_var="LOCUST_LOAD_PROFILE",
                   help="load shape")
    g.add_argument("--digits", type=int, default=1000, env_var="LOCUST_DIGITS",
                   help="real test digits to send")
    # The SLO's one home is load_tests/slo.py: each field is an option with its default.
    for field in fields(SLO):
        option = field.name.replace("_", "-")
        g.add_argument(f"--slo-{option}", type=float, default=field.default,
                       env_var=f"LOCUST_SLO_{field.name.upper()}",
                       help=f"SLO gate on quit: {field.metadata['help']}")


class State:
    """What the users share, hung on the Locust environment (no module globals)."""

    def __init__(self, payloads: Payloads) -> None:
        self.payloads = payloads
        self.accuracy = Accuracy()


@events.init.add_listener
def _init(environment: Environment, **_) -> None:
    opts = environment.parsed_options
    payloads = build(n=opts.digits if opts else 1000)
    environment.mnist = State(payloads)  # type: ignore[attr-defined]
    print(f"load test payloads: {payloads.summary()}", flush=True)


@events.quitting.add_listener
def _gate(environment: Environment, **_) -> None:
    opts = environment.parsed_options
    assert opts is not None
    state: State = environment.mnist  # type: ignore[attr-defined]
    slo = SLO(**{f.name: getattr(opts, f"slo_{f.name}") for f in fields(SLO)})
    total = environment.stats.total
    problems = violations(total, state.accuracy, slo)
    verdict = "SLO PASS" if not problems else "SLO FAIL: " + "; ".join(problems)
    print(f"\n{verdict}\n{summary(total, state.accuracy)}", flush=True)
    if problems:
        environment.process_exit_code = 1


def _check_prediction(body: dict) -> str | None:
    if set(body) != PREDICTION_KEYS:
        return f"unexpected keys {sorted(body)}"
    if not (isinstance(body["digit"], int) and 0 <= body["digit"] <= 9):
        return f"digit {body['digit']!r} out of range"
    if len(body["probabilities"]) != 10:
        return "probabilities must have 10 entries"
    return None


class MNISTUser(FastHttpUser):
    abstract = True
    wait_time = between(0.0, 0.01)

    @property
    def state(self) -> State:
        return self.environment.mnist  # type: ignore[attr-defined]

    def _post(self, path: str, body: bytes, ctype: str, labels: list[int]) -> None:
        # FastHttp sends bytes as they are (its annotation says str | dict only).
        with self.client.post(path, data=body, headers={"Content-Type": ctype},  # type: ignore[arg-type]
                              catch_response=True, name=path) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return
            try:
                body_json = json.loads(resp.content or b"")
                preds = body_json.get("predictions", [body_json])
            except (ValueError, AttributeError):
                resp.failure("response is not a JSON object")
                return
            problem = (f"{len(preds)} predictions for {len(labels)} images"
                       if len(preds) != len(labels) else None)
            problem = problem or next(filter(None, map(_check_prediction, preds)), None)
            if problem:
                resp.failure(problem)
                return
            self.state.accuracy.add([p["digit"] for p in preds], labels)
            resp.success()


class PredictUser(MNISTUser):
    """A client posting one PNG digit at a time: most of the traffic."""

    weight = 8

    @task
    def predict(self) -> None:
        i = random.randrange(len(self.state.payloads.predict))
        body, ctype = self.state.payloads.predict[i]
        self._post("/predict", body, ctype, [int(self.state.payloads.labels[i])])


class BatchUser(MNISTUser):
    weight = 1

    @task
    def predict_batch(self) -> None:
        body, ctype, labels = random.choice(self.state.payloads.batches)
        self._post("/predict_batch", body, ctype, [int(x) for x in labels])


class PixelsUser(MNISTUser):
    weight = 1

    @task
    def predict_pixels(self) -> None:
        i = random.randrange(len(self.state.payloads.pixels))
        self._post("/predict_pixels", self.state.payloads.pixels[i], "application/json",
                   [int(self.state.payloads.labels[i])])
