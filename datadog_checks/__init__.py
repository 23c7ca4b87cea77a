# A pkgutil-style namespace package, as upstream's, so that other datadog_checks.<name>
# distributions install beside this one.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
