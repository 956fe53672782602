"""Results parsed from the spec's sample JSON (pure logic, no server)."""

import base64
import json
from datetime import datetime, timezone

import sandpit
from sandpit.models import PNG_MAGIC, parse_time

# a 1x1 PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_run_result_from_the_spec():
    body = json.loads(
        '{"stdout": "hi\\n", "stderr": "", "exit_code": 0, "timed_out": false, "truncated": false,'
        ' "oom_killed": false, "duration_ms": 90, "compile": null, "artifacts": [],'
        ' "cpu_ms": 41, "memory_peak_bytes": 9437184}'
    )
    r = sandpit.RunResult.from_dict(body)
    assert r.stdout == "hi\n" and r.text == "hi\n"
    assert r.exit_code == 0 and r.success
    assert r.compile is None and r.artifacts == []
    assert r.cpu_ms == 41 and r.memory_peak_bytes == 9437184 and r.duration_ms == 90
    assert r.raw == body


def test_run_result_with_compile_step_and_artifacts():
    body = {
        "stdout": "",
        "stderr": "",
        "exit_code": 1,
        "compile": {
            "stdout": "",
            "stderr": "Main.java:1: error: ';' expected",
            "exit_code": 1,
            "timed_out": False,
            "truncated": False,
            "oom_killed": False,
            "duration_ms": 700,
        },
        "artifacts": [{"name": "figure_1.png", "mime": "image/png", "data_base64": base64.b64encode(PNG).decode()}],
    }
    r = sandpit.RunResult.from_dict(body)
    assert isinstance(r.compile, sandpit.CompileResult)
    assert not r.compile.success and "expected" in r.compile.stderr
    assert not r.success
    assert r.artifacts[0].name == "figure_1.png"
    assert r.artifacts[0].data.startswith(PNG_MAGIC)
    assert r.images == [PNG]
    # a failed compile makes the run unsuccessful even if exit_code said 0
    body["exit_code"] = 0
    assert not sandpit.RunResult.from_dict(body).success


def test_run_result_flags():
    r = sandpit.RunResult.from_dict({"stdout": "", "exit_code": 137, "oom_killed": True})
    assert not r.success and r.oom_killed
    r = sandpit.RunResult.from_dict({"exit_code": None, "timed_out": True})
    assert r.exit_code is None and r.timed_out and not r.success


def test_execute_result_from_the_spec():
    body = json.loads(
        '{"results": [{"text/plain": "42"}], "stdout": "", "stderr": "", "error": null,'
        ' "timed_out": false, "truncated": false, "state_lost": false, "kernel_started": true,'
        ' "duration_ms": 12}'
    )
    r = sandpit.ExecuteResult.from_dict(body)
    assert r.text == "42"
    assert r.error is None and r.success
    assert r.kernel_started and not r.state_lost
    assert r.images == []


def test_execute_result_text_is_the_last_text_plain_and_images_decode():
    png64 = base64.b64encode(PNG).decode()
    r = sandpit.ExecuteResult.from_dict(
        {
            "results": [
                {"text/plain": "first"},
                {"image/png": png64, "text/plain": "<Figure size 640x480 with 1 Axes>"},
                {"text/html": "<b>x</b>"},
                {"application/json": {"a": 1}},
            ]
        }
    )
    assert r.text == "<Figure size 640x480 with 1 Axes>"
    assert len(r.images) == 1 and r.images[0][:8] == PNG_MAGIC
    assert r.html == ["<b>x</b>"] and r.json == [{"a": 1}]
    assert sandpit.ExecuteResult.from_dict({"results": []}).text is None


def test_execute_error():
    r = sandpit.ExecuteResult.from_dict(
        {
            "results": [],
            "error": {
                "name": "ZeroDivisionError",
                "value": "division by zero",
                "traceback": ["Traceback (most recent call last):", "ZeroDivisionError: division by zero"],
            },
        }
    )
    assert isinstance(r.error, sandpit.ExecutionError)
    assert r.error.name == "ZeroDivisionError" and str(r.error) == "ZeroDivisionError: division by zero"
    assert len(r.error.traceback) == 2
    assert not r.success


def test_command_result():
    r = sandpit.CommandResult.from_dict(
        {"stdout": "a\n", "stderr": "", "exit_code": 2, "timed_out": False, "truncated": True,
         "oom_killed": False, "duration_ms": 5}
    )
    assert r.text == "a\n" and r.exit_code == 2 and r.truncated and not r.success


def test_file_info_from_the_spec():
    f = sandpit.FileInfo.from_dict(
        {"name": "in.txt", "path": "data/in.txt", "kind": "file", "size": 2, "mode": "644",
         "modified": "2026-11-27T20:00:00Z"}
    )
    assert (f.name, f.path, f.kind, f.size, f.mode) == ("in.txt", "data/in.txt", "file", 2, "644")
    assert f.is_file and not f.is_dir
    assert f.modified == datetime(2026, 11, 27, 20, 0, tzinfo=timezone.utc)
    d = sandpit.FileInfo.from_dict({"path": "data/sub", "kind": "dir"})
    assert d.name == "sub" and d.is_dir


def test_session_info_from_the_spec_with_usage():
    body = json.loads(
        """{
  "id": "4f0c9a1b2c3d", "name": "analysis-1", "language": "python",
  "image": "sandpit/python:latest", "state": "running", "runtime": null, "network": "none",
  "created_at": "2026-11-27T20:00:00Z", "expires_at": "2026-11-28T02:00:00Z",
  "idle_timeout": 1800, "last_used_at": "2026-11-27T20:00:00Z",
  "metadata": {"user": "alice"}, "libraries": ["six"],
  "usage": {"cpu_seconds": 1.25, "memory_bytes": 31457280, "memory_peak_bytes": 52428800,
            "memory_limit_bytes": 536870912, "pids": 3, "disk_used_bytes": 4096,
            "disk_limit_bytes": 1073741824, "net_rx_bytes": 0, "net_tx_bytes": 0}
}"""
    )
    s = sandpit.SessionInfo.from_dict(body)
    assert s.id == "4f0c9a1b2c3d" and s.name == "analysis-1" and s.language == "python"
    assert s.runtime is None and s.network == "none" and s.state == "running"
    assert s.expires_at - s.created_at == (datetime(2026, 11, 28, 2, tzinfo=timezone.utc) - datetime(2026, 11, 27, 20, tzinfo=timezone.utc))
    assert s.idle_timeout == 1800 and s.metadata == {"user": "alice"} and s.libraries == ["six"]
    assert isinstance(s.usage, sandpit.Usage)
    assert s.usage.cpu_seconds == 1.25 and s.usage.pids == 3 and s.usage.memory_limit_bytes == 536870912
    del body["usage"]
    assert sandpit.SessionInfo.from_dict(body).usage is None


def test_package_info_from_objects_and_text():
    assert sandpit.PackageInfo.from_any({"name": "six", "version": "1.16.0"}) == sandpit.PackageInfo("six", "1.16.0")
    assert sandpit.PackageInfo.from_any("six==1.16.0") == sandpit.PackageInfo("six", "1.16.0")
    assert sandpit.PackageInfo.from_any("requests") == sandpit.PackageInfo("requests", None)


def test_health():
    h = sandpit.Health.from_dict(
        {"status": "ok", "engine": {"kind": "docker", "version": "26.1", "api_version": "1.45"}, "version": "0.1.0"}
    )
    assert h.ok and h.engine["kind"] == "docker" and h.version == "0.1.0"
    assert not sandpit.Health.from_dict({"status": "unavailable"}).ok


def test_unknown_and_missing_fields_are_tolerated():
    r = sandpit.RunResult.from_dict({"stdout": "x", "brand_new_field": 1})
    assert r.stdout == "x" and r.exit_code is None and r.raw["brand_new_field"] == 1
    assert sandpit.ExecuteResult.from_dict({}).results == []
    assert sandpit.SessionInfo.from_dict({"id": "a"}).created_at is None


def test_parse_time_variants():
    utc = timezone.utc
    assert parse_time("2026-11-27T20:00:00Z") == datetime(2026, 11, 27, 20, tzinfo=utc)
    assert parse_time("2026-11-27T20:00:00.123456789Z") == datetime(2026, 11, 27, 20, 0, 0, 123456, tzinfo=utc)
    assert parse_time("2026-11-27T21:30:00+01:30") == datetime(2026, 11, 27, 20, tzinfo=utc)
    assert parse_time("2026-11-27T20:00:00") == datetime(2026, 11, 27, 20, tzinfo=utc)
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_chunk():
    c = sandpit.Chunk.from_dict({"stream": "stderr", "text": "warn\n"})
    assert (c.stream, c.text) == ("stderr", "warn\n")
