"""Output sinks. Each runs behind a bounded queue: a slow sink never stalls inference."""
