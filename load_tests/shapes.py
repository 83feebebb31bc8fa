"""Load profiles: steady (default), ramp, spike and soak, chosen with --load-profile.

    locust --config load_tests/locust.conf --load-profile spike -u 32 -t 2m

Every profile scales to --users and ends at --run-time.
"""

from __future__ import annotations

from locust import LoadTestShape

PROFILES = ("steady", "ramp", "spike", "soak")


def users_at(profile: str, t: float, run_time: float, users: int) -> int:
    """How many users a profile wants t seconds into a run of run_time seconds."""
    frac = t / max(run_time, 1.0)
    if profile == "ramp":  # linear climb to the target: where does latency break?
        return max(1, round(users * min(1.0, frac / 0.8)))
    if profile == "spike":  # a quarter of the load, the full load for 20 %, back down
        return users if 0.4 <= frac < 0.6 else max(1, users // 4)
    if profile == "soak":  # steady after a gentle 60 s start; meant for --run-time 30m+
        return max(1, round(users * min(1.0, t / 60.0)))
    return users


class ProfileShape(LoadTestShape):
    use_common_options = True  # -u, -r and -t apply

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None and self.runner.environment.parsed_options is not None
        opts = self.runner.environment.parsed_options
        run_time = float(opts.run_time or 60)
        t = self.get_run_time()
        if t >= run_time:
            return None
        profile = getattr(opts, "load_profile", "steady")
        return users_at(profile, t, run_time, int(opts.num_users or 1)), float(opts.spawn_rate)
