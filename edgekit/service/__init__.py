"""The camera inference daemon: pipeline, sinks, metrics, HTTP, config, systemd integration."""
