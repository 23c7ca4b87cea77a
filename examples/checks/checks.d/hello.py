"""The hello-world custom check, written the way Datadog's "write a custom Agent check" guide
shows it: one module in checks.d, one config in conf.d, both named ``hello``."""

try:
    # Current SDK path...
    from datadog_checks.base import AgentCheck
except ImportError:
    # ...and the one very old agents shipped.
    from checks import AgentCheck

# Shown next to the check name in `security-agent status` and `security-agent check hello`.
__version__ = "1.0.0"


class HelloCheck(AgentCheck):
    def check(self, instance):
        self.gauge("hello.world", 1, tags=["TAG_KEY:TAG_VALUE", *self.instance.get("tags", [])])
