"""``triage serve``: import the registry's champion into BentoML when newer, then serve it.

Serving reads the BentoML model store only, so a running service never depends on the
registry being up; the registry version travels as a label on the BentoML model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from triage import ModelNotFoundError, Settings, get_settings
from triage._registry import configure_mlflow, registry_version, resolve_model

SERVICE = "serving.service:ComplaintTriage"


def bento_model_for(ref: str, settings: Settings) -> str:
    """The BentoML tag holding ``ref``; imported from the registry if BentoML lacks it."""
    settings.ensure_dirs()
    import bentoml

    local = Path(ref).expanduser()
    if local.exists():
        return _import_folder(local, settings)
    name, version = registry_version(ref, settings)
    model_version = f"{name}/{version}"
    for existing in _bento_models(settings.registered_model_name):
        if existing.info.labels.get("model_version") == model_version:
            return str(existing.tag)
    configure_mlflow(settings)
    print(f"importing {model_version} into BentoML ...", file=sys.stderr)
    imported = bentoml.mlflow.import_model(
        settings.registered_model_name,
        model_uri=f"models:/{name}/{version}",
        labels={"model_version": model_version, "registry_name": name, "registry_version": version},
        metadata={"source": "mlflow-registry", "ref": ref},
    )
    return str(imported.tag)


def _bento_models(name: str) -> list[Any]:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return list(bentoml.models.list(name))
    except NotFound:
        return []


def _import_folder(folder: Path, settings: Settings) -> str:
    import shutil

    import bentoml

    resolved = resolve_model(str(folder), settings)
    with bentoml.models.create(
        settings.registered_model_name,
        labels={"model_version": resolved.model_version},
        metadata={"source": str(folder.resolve())},
    ) as model:
        shutil.copytree(resolved.folder, Path(model.path) / "triage_model")
    return str(model.tag)


def wait_until_ready(url: str, process: subprocess.Popen[Any], timeout: float = 180.0) -> bool:
    """Poll /readyz until the service answers 200 (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def start_service(
    tag: str, host: str, port: int, settings: Settings, log: Path | None = None
) -> subprocess.Popen[Any]:
    """Start ``bentoml serve`` for the given BentoML model tag as a child process."""
    env = dict(os.environ)
    env.update({
        "TRIAGE_BENTO_MODEL": tag,
        "BENTOML_HOME": str(settings.bentoml_home),
        "TRIAGE_STATE_DIR": str(settings.state_dir),
    })
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port),
           "--working-dir", str(root)]
    output: Any = log.open("w") if log is not None else None
    return subprocess.Popen(
        cmd, env=env, stdout=output, stderr=subprocess.STDOUT if output else None,
        start_new_session=True,
    )


def stop_service(process: subprocess.Popen[Any], grace: float = 30.0) -> None:
    """SIGTERM the service's process group; SIGKILL what is left after ``grace`` seconds."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass


def serve_forever(model_ref: str = "champion", host: str | None = None, port: int | None = None) -> None:
    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    try:
        tag = bento_model_for(model_ref, settings)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"{exc}; nothing to serve") from exc
    process = start_service(tag, host, port, settings)
    url = f"http://{host}:{port}"

    def stop(*_: Any) -> None:
        os.killpg(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        if wait_until_ready(url, process):
            print(
                f"\nserving {tag} on {url}  (docs: {url}/docs, health: {url}/readyz)\n"
                f"try:\n  curl -s -X POST {url}/triage -H 'Content-Type: application/json' "
                "-d '{\"text\": \"我的信用卡尾号8812昨天被盗刷了5000元，我根本没有操作过\"}'\n",
                file=sys.stderr, flush=True,
            )
        process.wait()
    except KeyboardInterrupt:
        stop()
        process.wait(timeout=30)
    if process.returncode not in (0, -signal.SIGTERM, -signal.SIGINT, None):
        raise SystemExit(process.returncode)
