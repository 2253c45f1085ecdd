#!/usr/bin/env python3
"""The docker scenarios of issue 6 (a-f), run by tests/docker/run.sh after it built the image.

The cluster of tests/docker/cluster.toml runs on the network of tests/docker/docker-compose.yml:
Pebble, the master, three workers and a client. Every check is one a user would make with
kdig from the client container: DoT (and DoH) to a node, the chain verified against Pebble's
issuing root and the certificate's name. The leaf a node serves is told apart by the SHA-256
public key pin kdig prints; certzone makes a new key for every certificate.

Prints each check and each scenario's duration; exits non-zero on the first failure, after
printing the last lines of every container's log. Standard library only.
"""

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")).resolve()
RUN = TARGET / "docker" / "run"
PROJECT = "certzone-test"
NETWORK = f"{PROJECT}_net"
# Short enough for scenario b to see a renewal (at half the lifetime), long enough for the
# other scenarios to run between renewals.
VALIDITY_SECS = 90
# Pebble's management API, where its issuing root is (pebble.json).
PEBBLE_MANAGEMENT_PORT = 15000
# Where the client keeps Pebble's root and its query loops' stop file (RUN/client, mounted).
CLIENT_DIR = "/client"


class Failure(Exception):
    """A check that did not hold; the message says what was expected and what was seen."""


def main():
    cluster = Cluster(tomllib.loads((HERE / "cluster.toml").read_text()))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    passed = 0
    try:
        # What an interrupted run left behind.
        compose("down", "-v", "--timeout", "5")
        prepare(cluster)
        bring_up(cluster)
        for scenario in SCENARIOS:
            run_scenario(scenario, cluster)
            passed += 1
    except Failure as failure:
        print(f"\nFAILED: {failure}")
        dump_logs(cluster)
    finally:
        compose("down", "-v", "--timeout", "5")
        # Scenarios after a failure did not run: they count as failed. .ci/run sums this line.
        print(f"\nscenarios: {passed} passed, {len(SCENARIOS) - passed} failed "
              f"in {time.monotonic() - started:.0f} s")
    return 0 if passed == len(SCENARIOS) else 1


class Cluster:
    """What the scenarios need from the cluster file."""

    def __init__(self, config):
        nodes = config["node"]
        self.master_name, self.master = next(
            (n["name"], n["address"]) for n in nodes if n["role"] == "master")
        self.workers = {n["name"]: n["address"] for n in nodes if n["role"] == "worker"}
        self.nodes = {n["name"]: n["address"] for n in nodes}
        self.dns_port = config["ports"]["dns"]
        self.tls_port = config["ports"]["tls"]
        self.https_port = config["ports"]["https"]
        self.hostname = config["cluster"]["names"][0]
        self.domain = config["cluster"]["domain"]
        self.certificate_zone = config["cluster"].get("certificate-zone", f"_certzone.{self.domain}")
        self.directory = config["ca"]["directory"]
        self.zone_file = config["cluster"]["zone-file"]
        # The question every check asks, and the answer the zone file gives.
        self.qname = f"www.{self.domain}"
        zone = (HERE / self.zone_file).read_text()
        self.answer = re.search(r"^www\s+IN\s+A\s+(\S+)", zone, re.M).group(1)


# --- the scenarios -------------------------------------------------------------------------


def bring_up(cluster):
    start = time.monotonic()
    print("== bring-up: Pebble, then the master, the workers and the client")
    compose("up", "-d", "pebble")
    pebble = urllib.parse.urlsplit(cluster.directory)
    context = ssl.create_default_context(cafile=RUN / "pebble" / "pebble-https-ca.pem")
    wait_for(
        "Pebble's directory to answer",
        30,
        lambda: https_get(cluster.directory, context),
    )
    # Pebble's issuing root is new at every start: fetch it from its management port.
    root = https_get(f"https://{pebble.hostname}:{PEBBLE_MANAGEMENT_PORT}/roots/0", context)
    (RUN / "client" / "pebble-root.pem").write_text(root)
    compose("up", "-d", *cluster.nodes, "client")
    print(f"   containers up in {time.monotonic() - start:.1f} s")


def scenario_a(cluster):
    """bring-up: Pebble issues, and every worker serves the chain over DoT and DoH."""
    pin = wait_for(
        "the master to serve a certificate from Pebble over DoT",
        60,
        lambda: probe(cluster, cluster.master, "tls"),
    )
    for name, ip in cluster.nodes.items():
        for transport in ("tls", "https"):
            wait_for(
                f"{name} {ip} to serve the master's leaf over {label(transport)}",
                30,
                lambda: probe(cluster, ip, transport) == pin,
            )
            check(f"{name} {ip} answers {cluster.qname} A {cluster.answer} over "
                  f"{label(transport)}, chain verified against Pebble's root for "
                  f"{cluster.hostname}, leaf pin {pin}")


def scenario_b(cluster):
    """renewal: every worker swaps, and continuous DoT queries see no failure."""
    old = agreed_pin(cluster)
    check(f"all nodes serve pin {old}; waiting for the renewal at half of {VALIDITY_SECS} s")
    with QueryLoop(cluster, list(cluster.workers.values())) as loop:
        new = wait_for(
            "every node to serve one renewed certificate",
            VALIDITY_SECS + 30,
            lambda: (p := agreed_pin(cluster, quiet=True)) not in (None, old) and p,
        )
        loop.wait_rounds(2)
    check(f"every node swapped to pin {new}")
    failed = [r for r in loop.results if not r.pin]
    if failed:
        raise Failure(f"{len(failed)} of {len(loop.results)} DoT queries failed, first: "
                      f"{failed[0].ip} in round {failed[0].round}:\n{failed[0].output}")
    for name, ip in cluster.workers.items():
        seen = [r.pin for r in loop.results if r.ip == ip]
        changes = [pin for i, pin in enumerate(seen) if i == 0 or pin != seen[i - 1]]
        if changes != [old, new]:
            raise Failure(f"the query loop saw {name} serve {changes}, not {old} then {new}")
    check(f"{len(loop.results)} DoT queries in {loop.rounds} rounds across the swap, "
          "every one answered and verified; each worker seen old, then new")


def scenario_c(cluster):
    """kill the master: workers keep serving; restarted, it resumes from its state."""
    # A fresh certificate first, so that no renewal falls due while the master is down.
    pin = renew_and_wait(cluster)
    killed = time.time()
    docker("kill", container(cluster.master_name))
    check("master killed (SIGKILL)")
    for name, ip in cluster.workers.items():
        wait_for(
            f"{name} to find the master gone (log: refresh failed)",
            30,
            lambda: "refresh failed" in logs(name, since=killed),
        )
        for transport in ("tls", "https"):
            served = probe(cluster, ip, transport)
            if served != pin:
                raise Failure(f"{name} {ip} over {label(transport)}: expected pin {pin}, "
                              f"got {served}")
        check(f"{name} noticed the master is gone and still serves pin {pin} over DoT and DoH")
    orders = pebble_orders()
    restarted = time.time()
    docker("start", container(cluster.master_name))
    wait_for(
        "the restarted master to serve its certificate over DoT",
        30,
        lambda: probe(cluster, cluster.master, "tls") == pin or None,
    )
    wait_for(
        "the restarted master to schedule its next renewal",
        30,
        lambda: "next certificate renewal" in logs(cluster.master_name, since=restarted),
    )
    log = logs(cluster.master_name, since=restarted)
    if "ACME order created" in log or pebble_orders() != orders:
        raise Failure(f"the restarted master ordered a certificate; its log:\n{log}")
    planned = re.search(r"next certificate renewal.*", log).group(0)
    check(f"restarted master serves the same pin {pin}, made no order (Pebble still has "
          f"{orders} orders), and logs: {planned}")


def scenario_d(cluster):
    """disconnect a worker during a renewal, then reconnect it: it catches up."""
    name, ip = list(cluster.workers.items())[-1]
    others = without(cluster, name)
    master = cluster.master_name
    old = agreed_pin(cluster)
    docker("network", "disconnect", NETWORK, container(name))
    if probe(cluster, ip, "tls") is not None:
        raise Failure(f"{name} still answers after it was disconnected")
    check(f"{name} {ip} disconnected: it no longer answers the client")
    renewing = time.time()
    renew(cluster)
    # Pebble reuses a valid authorization for 1 order in 100 even with PEBBLE_AUTHZREUSE=0
    # (it reuses unless rand.Intn(100) > 0), as Let's Encrypt does for a month: then no
    # challenge holds the renewal back, and the worker misses the new certificate instead
    # (and finds it by the certificate zone's refresh timer, refresh-secs).
    challenged = wait_for(
        "the master's renewal order to reach its authorization",
        30,
        lambda: authorization(logs(master, since=renewing)),
    ) == "challenge"
    if challenged:
        missed = f"{cluster.domain} (the challenge)"
        lost_notify(cluster, name, cluster.domain, since=renewing)
        if agreed_pin(cluster, nodes=others) != old:
            raise Failure(f"a certificate was issued while {name}, an authoritative server, "
                          "could not serve the challenge")
        check(f"renewal held back: the master's NOTIFY of the challenge to {name} went "
              f"unanswered, and the other nodes still serve pin {old}")
    else:
        missed = "the certificate zone"
        new = wait_for("the other nodes to serve the renewed certificate", 30,
                       lambda: (p := agreed_pin(cluster, quiet=True, nodes=others)) != old and p)
        lost_notify(cluster, name, cluster.certificate_zone, since=renewing)
        check(f"the CA reused a valid authorization: the other nodes serve pin {new}, the "
              f"master's NOTIFY of it to {name} went unanswered")
    reconnected = time.time()
    docker("network", "connect", "--ip", ip, NETWORK, container(name))
    new = wait_for(
        f"{name} and every other node to serve the renewed certificate",
        60,
        lambda: (p := agreed_pin(cluster, quiet=True)) not in (None, old) and p,
    )
    log = logs(name, since=reconnected)
    if "zone transferred" not in log:
        raise Failure(f"{name} serves the new certificate but logged no zone transfer:\n{log}")
    check(f"{name} reconnected and caught up with {missed}; all nodes serve pin {new}")


def authorization(master_log):
    """How the CA treats the master's latest order: "challenge", "reused" or None yet."""
    if "authorization pending: dns-01 challenge" in master_log:
        return "challenge"
    return "reused" if "authorization already valid" in master_log else None


def lost_notify(cluster, name, zone, since):
    """Waits until the master gives up sending NOTIFY for `zone` to worker `name`."""
    target = f"target={cluster.workers[name]}:{cluster.dns_port} zone={zone}"
    wait_for(
        f"the master to give up sending NOTIFY for {zone} to {name}",
        30,
        lambda: any("NOTIFY not acknowledged" in line and target in line
                    for line in logs(cluster.master_name, since=since).splitlines()),
    )


def scenario_e(cluster):
    """restart a worker while the master is down: it serves from its cache."""
    name, ip = list(cluster.workers.items())[1]
    pin = agreed_pin(cluster)
    docker("stop", container(cluster.master_name))
    check("master stopped")
    restarted = time.time()
    docker("restart", container(name))
    # The certificate from the bundle cache, the zone from the worker's copy on disk.
    answers = {}
    for transport in ("tls", "https"):
        answer = wait_for(
            f"the restarted {name} to serve pin {pin} over {label(transport)}",
            30,
            lambda: (a := ask(cluster, ip, transport)) and a.pin == pin and a,
        )
        if answer.status != "NOERROR" or not answer.addresses:
            raise Failure(f"{name} answered {cluster.qname} A over {label(transport)} with "
                          f"{answer.status} {answer.addresses}, not the zone's addresses")
        answers[label(transport)] = f"{answer.status} {' '.join(answer.addresses)}"
    log = logs(name, since=restarted)
    if not re.search(r"certificate installed from the certificate zone.*from=cache", log):
        raise Failure(f"{name} did not log installing from its cache:\n{log}")
    if "zone served from the copy on disk" not in log:
        raise Failure(f"{name} did not log serving its zone from its copy on disk:\n{log}")
    check(f"{name} restarted with the master down and serves pin {pin}, installed from its "
          f"cache, to verifying clients, and answers from its zone copy ({answers})")
    docker("start", container(cluster.master_name))
    wait_for(
        "the master back and every node serving one certificate",
        60,
        lambda: agreed_pin(cluster, quiet=True),
    )
    check("master started again; every node answers and serves one certificate")


def scenario_f(cluster):
    """rolling restart of every worker: every query is answered by some worker."""
    with QueryLoop(cluster, list(cluster.workers.values())) as loop:
        for name, ip in cluster.workers.items():
            loop.wait_rounds(1)
            docker("restart", container(name))
            wait_for(
                f"the restarted {name} to serve over DoT",
                30,
                lambda: probe(cluster, ip, "tls"),
            )
            check(f"{name} restarted and serves again")
        loop.wait_rounds(1)
    unanswered = [n for n in range(1, loop.rounds + 1)
                  if not any(r.pin for r in loop.results if r.round == n)]
    if unanswered:
        raise Failure(f"rounds {unanswered} were answered by no worker")
    missed = {name: sum(1 for r in loop.results if r.ip == ip and not r.pin)
              for name, ip in cluster.workers.items()}
    check(f"{loop.rounds} rounds of DoT queries to every worker, each answered by at least "
          f"one; queries missed while a worker restarted: {missed}")


SCENARIOS = [scenario_a, scenario_b, scenario_c, scenario_d, scenario_e, scenario_f]


def run_scenario(scenario, cluster):
    print(f"\n== {scenario.__name__[-1]}. {scenario.__doc__}")
    start = time.monotonic()
    scenario(cluster)
    print(f"   passed in {time.monotonic() - start:.1f} s")


# --- what a user checks --------------------------------------------------------------------


def probe(cluster, ip, transport):
    """The leaf's pin when `ip` answers the question over `transport` ("tls" or "https")
    with the zone's answer and a chain that verifies; None otherwise."""
    answer = ask(cluster, ip, transport)
    return answer.pin if answer and answer.addresses == [cluster.answer] else None


def ask(cluster, ip, transport):
    """kdig's answer from `ip` over `transport` when the chain verifies, else None."""
    port = cluster.tls_port if transport == "tls" else cluster.https_port
    result = client(*kdig_args(cluster, ip, port, transport))
    return Answer.parse(cluster, result.stdout) if result.returncode == 0 else None


def kdig_args(cluster, ip, port, transport):
    return ["kdig", "-d", f"@{ip}", "-p", str(port), f"+{transport}",
            f"+tls-ca={CLIENT_DIR}/pebble-root.pem", f"+tls-hostname={cluster.hostname}",
            "+timeout=2", "+retry=0", cluster.qname, "A"]


class Answer:
    """What `kdig -d` printed: the served leaf's pin, the status, the A addresses."""

    def __init__(self, pin, status, addresses):
        self.pin = pin
        self.status = status
        self.addresses = addresses

    @classmethod
    def parse(cls, cluster, output):
        """None unless kdig trusted the chain and got an answer."""
        pin = re.search(r"SHA-256 PIN: (\S+)", output)
        status = re.search(r"->>HEADER<<-.*status: (\w+)", output)
        if "The certificate is trusted" not in output or not pin or not status:
            return None
        owner = re.escape(cluster.qname.rstrip(".") + ".")
        addresses = re.findall(rf"^{owner}\s+\d+\s+IN\s+A\s+(\S+)$", output, re.M)
        return cls(pin.group(1), status.group(1), addresses)


def agreed_pin(cluster, quiet=False, nodes=None):
    """The pin every node in `nodes` (all by default) serves over DoT, if they agree."""
    pins = {name: probe(cluster, ip, "tls") for name, ip in (nodes or cluster.nodes).items()}
    if len(set(pins.values())) == 1 and None not in pins.values():
        return next(iter(pins.values()))
    if quiet:
        return None
    raise Failure(f"the nodes do not serve one certificate over DoT: {pins}")


def without(cluster, name):
    return {n: ip for n, ip in cluster.nodes.items() if n != name}


def renew_and_wait(cluster):
    """Forces a renewal with `certzone renew`, as an operator would; returns the new pin."""
    old = agreed_pin(cluster)
    renew(cluster)
    new = wait_for(
        "every node to serve the certificate of a forced renewal",
        60,
        lambda: (p := agreed_pin(cluster, quiet=True)) not in (None, old) and p,
    )
    check(f"forced renewal: every node serves pin {new}")
    return new


def renew(cluster):
    """`certzone renew` on the master: what an operator runs to renew now."""
    docker("exec", container(cluster.master_name), "certzone", "renew", "--config",
           "/node/node.toml")


class QueryLoop:
    """DoT queries from the client to `ips` in rounds, in a busybox shell loop, until stopped
    (or a time limit). Each query's kdig output follows a line `== query ROUND IP STATUS`."""

    LIMIT_SECS = 300

    class Result:
        def __init__(self, cluster, header, output):
            _, _, round_, self.ip, status = header.split()
            self.round = int(round_)
            answer = Answer.parse(cluster, output) if status == "0" else None
            ok = answer and answer.addresses == [cluster.answer]
            self.pin = answer.pin if ok else None
            self.output = output

    def __init__(self, cluster, ips):
        self.cluster = cluster
        self.ips = ips
        self.results = []
        self.rounds = 0
        self.output = RUN / "client" / "loop.out"
        self.stop = RUN / "client" / "stop"

    def __enter__(self):
        self.stop.unlink(missing_ok=True)
        self.output.unlink(missing_ok=True)
        query = " ".join(kdig_args(self.cluster, "$ip", self.cluster.tls_port, "tls"))
        script = f"""
            end=$(( $(date +%s) + {self.LIMIT_SECS} )); n=0
            while [ ! -e {CLIENT_DIR}/stop ] && [ "$(date +%s)" -lt "$end" ]; do
              n=$((n + 1))
              for ip in {' '.join(self.ips)}; do
                out=$({query} 2>&1)
                printf '== query %s %s %s\\n%s\\n' "$n" "$ip" "$?" "$out"
              done
            done >> {CLIENT_DIR}/loop.out
        """
        self.process = subprocess.Popen(
            ["docker", "exec", container("client"), "sh", "-c", script])
        return self

    def wait_rounds(self, count):
        """Waits until `count` more rounds have finished."""
        target = self.finished_rounds() + count
        wait_for(f"{count} more rounds of client queries", 60,
                 lambda: self.finished_rounds() >= target)

    def finished_rounds(self):
        headers = [line.split()[2] for line in self.lines() if line.startswith("== query ")]
        return sum(1 for n in set(headers) if headers.count(n) == len(self.ips))

    def lines(self):
        return self.output.read_text().splitlines() if self.output.exists() else []

    def __exit__(self, *_):
        self.stop.touch()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise Failure("the client's query loop did not stop within 30 s of its stop file")
        blocks = re.split(r"^(== query .*)$", self.output.read_text(), flags=re.M)[1:]
        self.results = [self.Result(self.cluster, header, output)
                        for header, output in zip(blocks[::2], blocks[1::2])]
        self.rounds = max((r.round for r in self.results), default=0)


# --- plumbing ------------------------------------------------------------------------------


def prepare(cluster):
    """A fresh run directory: the cluster file and zone, Pebble's HTTPS material and config,
    then every node's directory from `certzone cluster render`."""
    shutil.rmtree(RUN, ignore_errors=True)
    (RUN / "pebble").mkdir(parents=True)
    (RUN / "client").mkdir()
    shutil.copy(HERE / "cluster.toml", RUN)
    shutil.copy(HERE / cluster.zone_file, RUN)
    pebble = urllib.parse.urlsplit(cluster.directory)
    https_material(pebble.hostname, RUN / "pebble")
    shutil.copy(RUN / "pebble" / "pebble-https-ca.pem", RUN)
    (RUN / "pebble" / "pebble.json").write_text(f"""{{"pebble": {{
  "listenAddress": "{pebble.hostname}:{pebble.port}",
  "managementListenAddress": "{pebble.hostname}:{PEBBLE_MANAGEMENT_PORT}",
  "certificate": "/pebble/pebble-https.pem",
  "privateKey": "/pebble/pebble-https.key",
  "httpPort": 5002,
  "tlsPort": 5001,
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false,
  "certificateValidityPeriod": {VALIDITY_SECS}
}}}}
""")
    certzone = os.environ.get("CERTZONE") or str(TARGET / "release" / "certzone")
    run([certzone, "cluster", "render", "--config", str(RUN / "cluster.toml")])


def https_material(ip, out):
    """A throwaway CA and a certificate for Pebble's HTTPS listener at `ip`."""
    ca_key, ca, key, csr = (out / f for f in ("ca.key", "pebble-https-ca.pem",
                                              "pebble-https.key", "pebble-https.csr"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc"]
    run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=certzone docker test: Pebble HTTPS CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign"])
    run(["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=pebble"])
    extensions = out / "pebble-https.ext"
    extensions.write_text(f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n"
                          "basicConstraints=critical,CA:FALSE\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-days", "2", "-extfile", extensions,
         "-out", out / "pebble-https.pem"])


def https_get(url, context):
    """The body of a 200 answer, or None."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as answer:
            return answer.read().decode() if answer.status == 200 else None
    except OSError:
        return None


def pebble_orders():
    """How many orders Pebble has taken: one log line each."""
    return logs("pebble").count("Added order")


def compose(*args):
    run(["docker-compose", "--project-name", PROJECT, "--file", HERE / "docker-compose.yml",
         *args], env={**os.environ, "CERTZONE_DOCKER_RUN": str(RUN)})


def container(service):
    return f"{PROJECT}_{service}_1"


def docker(*args):
    run(["docker", *args])


def client(*args):
    """A command in the client container; its exit status is the caller's to judge."""
    return subprocess.run(["docker", "exec", container("client"), *args],
                          capture_output=True, text=True, timeout=30)


def logs(service, since=None):
    """The container's output (certzone logs to stderr), from `since` (Unix time) on."""
    # Docker reads the part after the point as nanoseconds.
    args = ["docker", "logs"] + (["--since", f"{since:.9f}"] if since else [])
    # One pipe for both streams keeps the lines in order.
    result = subprocess.run([*args, container(service)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=30)
    return result.stdout


def run(args, env=None):
    args = [str(a) for a in args]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    if result.returncode != 0:
        raise Failure(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}"
                      f"{result.stderr}")
    return result


def wait_for(what, limit_secs, attempt):
    """Calls `attempt` until it returns something truthy, for at most `limit_secs`."""
    deadline = time.monotonic() + limit_secs
    while True:
        value = attempt()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {limit_secs} s waiting for {what}")
        time.sleep(0.5)


def check(what):
    print(f"   ok: {what}")


def label(transport):
    return {"tls": "DoT", "https": "DoH"}[transport]


def dump_logs(cluster):
    for service in ["pebble", *cluster.nodes, "client"]:
        print(f"\n--- last lines of {service}'s log ---")
        print("\n".join(logs(service).splitlines()[-40:]))


if __name__ == "__main__":
    sys.exit(main())
