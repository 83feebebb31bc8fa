from __future__ import annotations

import pytest

from service.cpus import usable_cpus


@pytest.mark.parametrize("files, expected", [
    ({}, None),  # no cgroup files: the affinity mask alone
    ({"cpu.max": "max 100000\n"}, None),  # v2, no quota
    ({"cpu.max": "100000 100000\n"}, 1),  # v2, one CPU (docker --cpus 1)
    ({"cpu.max": "150000 100000\n"}, 1),  # 1.5 CPUs: a second worker would be throttled
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
])
def test_usable_cpus_follow_affinity_and_cgroup_quota(tmp_path, monkeypatch, files, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1, 2, 3})
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert usable_cpus(tmp_path) == (expected or 4)
