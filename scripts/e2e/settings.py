"""Where things are and how they are reached: paths, ports, the environment the daemon gets.

Everything is read once from the environment (see scripts/e2e.sh for the variables) into a
`Settings` object that the other modules receive; nothing here starts a process.
"""

import glob
import importlib.util
import os
import subprocess
import time
from dataclasses import dataclass, field

REGION = "us-east-1"
# Emulators ignore signatures, but the AWS SDKs insist on having some credentials.
FAKE_KEY = "kcl-e2e"


def _port(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _jars_dir():
    """The folder of KCL jars shipped inside the kclpy-ext wheel (package amazon_kclpy)."""
    spec = importlib.util.find_spec("amazon_kclpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("amazon_kclpy (kclpy-ext) is not installed in this Python")
    jars = os.path.join(list(spec.submodule_search_locations)[0], "jars")
    if not glob.glob(os.path.join(jars, "*.jar")):
        raise SystemExit(f"no KCL jars in {jars}")
    return jars


def kcl_path(repo):
    """target/debug/kcl of the checkout `repo` (cargo build -p kcl-cli; scripts/e2e.sh builds it)."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(repo, "target")
    return os.path.join(target, "debug", "kcl")


@dataclass
class Settings:
    """Paths, ports and knobs of one run of the suite."""

    repo: str
    cache: str
    run_dir: str
    kinesis_port: int
    kinesis_tls_port: int
    dynamodb_port: int
    java: str
    java_opts: list
    seed: int
    chaos_rounds: int
    run_id: str = field(default="")

    @staticmethod
    def from_env():
        repo = os.environ.get("KCL_E2E_REPO") or os.path.abspath(
            os.path.join(os.path.dirname(__file__), "..", "..")
        )
        cache = os.path.abspath(os.environ.get("KCL_E2E_CACHE") or os.path.join(repo, ".e2e-cache"))
        run_id = str(int(time.time()))
        run_dir = os.path.join(cache, "runs", run_id)
        suffix = 0
        while os.path.exists(run_dir):  # two runs in the same second
            suffix += 1
            run_dir = os.path.join(cache, "runs", f"{run_id}-{suffix}")
        os.makedirs(run_dir)
        seed_text = os.environ.get("KCL_E2E_SEED", "").strip()
        return Settings(
            repo=repo,
            cache=cache,
            run_dir=run_dir,
            kinesis_port=_port("KCL_E2E_KINESIS_PORT", 14568),
            kinesis_tls_port=_port("KCL_E2E_KINESIS_TLS_PORT", 14567),
            dynamodb_port=_port("KCL_E2E_DYNAMODB_PORT", 14569),
            java=os.environ.get("KCL_E2E_JAVA", "java"),
            # C1 only and a small serial heap: faster start, less CPU on a 2-core machine.
            java_opts=(
                os.environ.get("KCL_E2E_JAVA_OPTS")
                or "-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
            ).split(),
            seed=int(seed_text) if seed_text else int(time.time() * 1000) % 1_000_000,
            chaos_rounds=_port("KCL_E2E_CHAOS_ROUNDS", 6),
            run_id=os.path.basename(run_dir),
        )

    @property
    def kinesis_endpoint(self):
        return f"http://127.0.0.1:{self.kinesis_port}"

    @property
    def dynamodb_endpoint(self):
        return f"http://127.0.0.1:{self.dynamodb_port}"

    @property
    def jars(self):
        return _jars_dir()

    @property
    def kcl(self):
        """target/debug/kcl (cargo build -p kcl-cli; scripts/e2e.sh builds it)."""
        return kcl_path(self.repo)

    def daemon_classpath(self):
        """The daemon's classpath: the wheel's jars checked by `kcl jars verify` against the KCL
        3.1.3 jar list pinned in kcl-cli (every SHA-256; a missing, extra or changed jar fails),
        then exactly the jars of that list (`kcl jars path --classpath`), never `JARS/*`.
        Raises RuntimeError with kcl's own words when the check fails."""
        if getattr(self, "_classpath", None):
            return self._classpath
        verify = subprocess.run([self.kcl, "jars", "verify", self.jars], capture_output=True, text=True)
        if verify.returncode != 0:
            raise RuntimeError(f"kcl jars verify {self.jars}: exit {verify.returncode}: {verify.stderr.strip()}")
        path = subprocess.run(
            [self.kcl, "jars", "path", "--classpath", "--dir", self.jars], capture_output=True, text=True
        )
        if path.returncode != 0 or not path.stdout.strip():
            raise RuntimeError(f"kcl jars path --classpath: exit {path.returncode}: {path.stderr.strip()}")
        self._classpath = path.stdout.strip()
        self.jars_checked = (verify.stdout + verify.stderr).strip()
        return self._classpath

    @property
    def node_package(self):
        return os.path.join(self.cache, "node", "node_modules", "kinesis-local")

    @property
    def venv_bin(self):
        return os.path.join(self.cache, "venv", "bin")

    def example(self, name):
        """Path of a built example binary (cargo build --example NAME)."""
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(self.repo, "target")
        return os.path.join(target, "debug", "examples", name)

    def process_env(self):
        """Environment for the daemon (and so its children) and the emulators."""
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=FAKE_KEY,
            AWS_SECRET_ACCESS_KEY=FAKE_KEY,
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            # The child's logs (they reach the daemon log through its stderr).
            RUST_LOG=env.get("RUST_LOG", "info"),
        )
        # Never talk to a real account by accident through a profile or a session token.
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(key, None)
        return env
