"""A real mosquitto broker for tests, on 127.0.0.1:<free port>, that a test can stop and restart.

    with Broker(tmp_dir) as broker:  broker.port ...
"""

import os
import pwd
import shutil
import subprocess

from _net import free_port, wait_port

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
SKIP_REASON = "mosquitto is not installed (apt install mosquitto; .ci/system-packages.sh installs it)"


class Broker(object):
    """A real mosquitto on 127.0.0.1:<free port>, anonymous, that a test can stop and restart."""

    def __init__(self, workdir, extra=""):
        self.port = free_port()
        self.workdir = str(workdir)
        self.config = os.path.join(self.workdir, "mosquitto.conf")
        self.log = os.path.join(self.workdir, "mosquitto.log")
        with open(self.config, "w") as handle:
            # persistence: subscribers' sessions and queued QoS 1 messages survive a restart.
            # user: mosquitto started as root drops to "mosquitto", which could not write here
            handle.write("user %s\n" % pwd.getpwuid(os.getuid()).pw_name)
            handle.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                         "persistence_location %s/\nautosave_interval 0\n"
                         "log_dest file %s\nlog_type error\nlog_type warning\nlog_type notice\n"
                         % (self.port, self.workdir, self.log))
            handle.write(extra)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("mosquitto did not start on port %d (log: %s)" % (self.port, self.log))
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None
