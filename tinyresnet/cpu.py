"""What /proc/cpuinfo says of this CPU: one reader for `precision="auto"` and the measured tables."""

import platform


def cpu_fields(path="/proc/cpuinfo"):
    """The first processor's `{field: value}` of /proc/cpuinfo (`model name`, `flags`, `cpu family`, ...);
    {} where there is none (not Linux)."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break  # the first processor is enough
    except OSError:
        pass
    return fields


def model_and_flags(path="/proc/cpuinfo"):
    """`(model name, set of flags)`; the flags are empty where unknown."""
    fields = cpu_fields(path)
    model = fields.get("model name") or platform.processor() or platform.machine()
    return model, set(fields.get("flags", fields.get("Features", "")).split())
