"""The two emulators, on 127.0.0.1 only.

- Kinesis: kinesis-local (npm; etspaceman's kinesis-mock compiled to JavaScript). It serves plain
  HTTP/1.1 and h2c (HTTP/2 with prior knowledge, which the KCL's Kinesis client uses) on one port
  and TLS on another. It has no bind-address option (it listens on 0.0.0.0), so node runs it with
  the `loopback.js` preload, which rewrites every listen() to 127.0.0.1. It finds its TLS
  certificate `server.json` through KINESIS_MOCK_CERT_PATH (else it looks in the working directory
  and stops at start-up).
- DynamoDB: moto_server (PyPI moto) for the lease tables. (dynalite cannot serve KCL 3: it does
  not implement the GSI creation the KCL 3 lease table needs.)
"""

import os
import socket
import time

import boto3
from botocore.config import Config

from netstat import listening_addresses, listening_sockets_of
from settings import FAKE_KEY, REGION

HERE = os.path.dirname(os.path.abspath(__file__))


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def client(settings, service):
    """A boto3 client for the emulated `service` ('kinesis' or 'dynamodb')."""
    endpoint = settings.kinesis_endpoint if service == "kinesis" else settings.dynamodb_endpoint
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_KEY,
        aws_secret_access_key=FAKE_KEY,
        config=Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    )


class Emulators:
    """Starts and stops kinesis-local and moto_server through the process registry."""

    def __init__(self, settings, registry):
        self.settings = settings
        self.registry = registry
        self.kinesis = None
        self.dynamodb = None

    def start(self, deadline_s=60):
        s = self.settings
        ports = (s.kinesis_port, s.kinesis_tls_port, s.dynamodb_port)
        end = time.time() + 10  # ports of a process that just ended may take a moment to free
        while any(port_open(p) for p in ports) and time.time() < end:
            time.sleep(0.2)
        for port in ports:
            if port_open(port):
                raise RuntimeError(
                    f"port {port} is already in use on 127.0.0.1: another run, or set "
                    "KCL_E2E_KINESIS_PORT / KCL_E2E_KINESIS_TLS_PORT / KCL_E2E_DYNAMODB_PORT"
                )
        logs = os.path.join(s.run_dir, "logs")
        env = s.process_env()
        kinesis_env = dict(
            env,
            KINESIS_MOCK_PLAIN_PORT=str(s.kinesis_port),
            KINESIS_MOCK_TLS_PORT=str(s.kinesis_tls_port),
            KINESIS_MOCK_CERT_PATH=os.path.join(s.node_package, "server.json"),
            LOG_LEVEL=os.environ.get("KCL_E2E_KINESIS_LOG_LEVEL", "WARN"),
            SHOULD_PERSIST_DATA="false",
        )
        self.kinesis = self.registry.spawn(
            "kinesis-local",
            ["node", "-r", os.path.join(HERE, "loopback.js"), os.path.join(s.node_package, "main.js")],
            cwd=s.run_dir,
            env=kinesis_env,
            log_path=os.path.join(logs, "kinesis-local.log"),
            role="emulator",
        )
        self.dynamodb = self.registry.spawn(
            "moto_server",
            [os.path.join(s.venv_bin, "moto_server"), "-H", "127.0.0.1", "-p", str(s.dynamodb_port)],
            cwd=s.run_dir,
            env=env,
            log_path=os.path.join(logs, "moto_server.log"),
            role="emulator",
        )
        end = time.time() + deadline_s
        for proc, port in ((self.kinesis, s.kinesis_port), (self.dynamodb, s.dynamodb_port)):
            while not port_open(port):
                if not proc.running():
                    raise RuntimeError(f"{proc.name} exited at start-up:\n{proc.log_tail()}")
                if time.time() > end:
                    raise RuntimeError(f"{proc.name} did not open port {port} in {deadline_s} s")
                time.sleep(0.1)
        # Ports open is not quite ready: wait for a real answer from each.
        kinesis, dynamodb = client(s, "kinesis"), client(s, "dynamodb")
        while True:
            try:
                kinesis.list_streams()
                dynamodb.list_tables()
                break
            except Exception:  # noqa: BLE001 - anything until the deadline
                if time.time() > end:
                    raise
                time.sleep(0.2)

    def listeners(self):
        """{emulator name: every 'address:port' its process tree listens on}."""
        return {proc.name: listening_sockets_of(proc.pid) for proc in (self.kinesis, self.dynamodb) if proc}

    def addresses(self):
        """{port: listening addresses} for the three emulator ports."""
        s = self.settings
        return {p: listening_addresses(p) for p in (s.kinesis_port, s.kinesis_tls_port, s.dynamodb_port)}

    def stop(self):
        for proc in (self.kinesis, self.dynamodb):
            if proc is not None:
                self.registry.stop(proc, timeout=5.0)
