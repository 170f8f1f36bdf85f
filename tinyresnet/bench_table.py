"""The bench's figures as Markdown tables (no TensorFlow: the README's renderer reads them too)."""

import pandas as pd

from tinyresnet import tables

SHORT = {"float32": "fp32", "mixed_bfloat16": "bf16"}


def net_table(result):
    """One row per net: ms/step, images/s and fraction of the ceiling per precision, and `auto`'s choice."""
    precisions = [p for p in result["settings"]["precisions"] if p in SHORT]
    header = ["net", "forward GFLOP/image"]
    for p in precisions:
        header += [f"{SHORT[p]} ms/step", f"{SHORT[p]} images/s", f"{SHORT[p]} of ceiling"]
    header += ["auto chooses"]
    per_net = []
    for net in result["nets"]:
        cells = [net["label"], f"{net['forward_gflops']:.3f}"]
        for p in precisions:
            m = net.get(p)
            cells += [f"{m['ms_per_step']:.1f}", f"{m['images_per_s']:.0f}", f"{m['ceiling_fraction']:.2f}"] \
                if m else ["", "", ""]
        of_best = f" ({net['auto_of_best']:.2f} of the faster)" if "auto_of_best" in net else ""
        cells.append(SHORT.get(net["auto"], net["auto"]) + of_best)
        per_net.append(cells)
    return tables.markdown(pd.DataFrame(per_net, columns=header))


def rows(result):
    """`[(measurement, result text)]`: ceilings, fixed per-step cost, pipeline and serving."""
    r = result
    out = [(f"matmul ceiling {name}", f"{r[key]:.0f} GFLOP/s")
           for name, key in (("fp32", "ceiling_gflops_fp32"), ("bf16", "ceiling_gflops_bf16")) if key in r]
    for policy, fit in (r.get("fixed_cost") or {}).items():
        if fit:
            rate = f"{fit['marginal_gflops']:.0f} GFLOP/s" if fit["marginal_gflops"] else "n/a"
            out.append((f"fixed cost per step, {SHORT.get(policy, policy)} (least squares over {fit['nets']} nets)",
                        f"{fit['fixed_ms_per_step']:.1f} ms + FLOPs at {rate} (R² {fit['r2']:.2f})"))
    if "decode_cache_ips" in r:
        out.append(("decode + cache (real archive)", f"{r['decode_cache_ips']:.0f} images/s"))
    if "augmented_epoch_ips" in r:
        out.append(("augmented epoch from cache, no model", f"{r['augmented_epoch_ips']:.0f} images/s"))
    if "pipeline_ips" in r:
        out.append(("train fp32, real pipeline (first net)", f"{r['pipeline_ips']:.0f} images/s = "
                    f"{r['pipeline_ratio']:.2f} of in memory ({r['pipeline_memory_ips']:.0f})"))
    out.append(("exported first net, batch 64", f"{r['export_ips_b64']:.0f} images/s = "
                f"{r['export_predict_ratio']:.2f} of model.predict ({r['predict_ips_b64']:.0f})"))
    out.append(("exported first net, one image",
                f"p50 {r['export_latency_p50_ms']:.1f} ms, p95 {r['export_latency_p95_ms']:.1f} ms"))
    return out


def format_table(result):
    """The bench result as Markdown: the per-net table, then the other measurements."""
    other = tables.markdown(pd.DataFrame(rows(result), columns=["measurement", "result"]))
    return net_table(result) + "\n\n" + other


def before_after_table(result):
    """`experiments/before_after.py`'s figures as a Markdown table."""
    header = ["net", "fp32 before", "fp32 after", "fp32 speed-up", "bf16 before", "bf16 after", "bf16 speed-up"]
    per_net = []
    for label, e in result["nets"].items():
        cells = [label]
        for policy in ("float32", "mixed_bfloat16"):
            cells += [f"{e['before'][policy]:.1f} ms", f"{e['after'][policy]:.1f} ms",
                      f"{e['speedup'][policy]:.2f}x"]
        per_net.append(cells)
    cells = ["fixed cost per step (least squares)"]
    for policy in ("float32", "mixed_bfloat16"):
        before, after = (result["fixed_cost"][n][policy] for n in ("before", "after"))
        if before and after:
            cells += [f"{before['fixed_ms_per_step']:.1f} ms", f"{after['fixed_ms_per_step']:.1f} ms",
                      f"{before['fixed_ms_per_step'] / after['fixed_ms_per_step']:.2f}x"
                      if after["fixed_ms_per_step"] > 0 else "n/a"]
        else:
            cells += ["", "", ""]
    return tables.markdown(pd.DataFrame(per_net + [cells], columns=header))


def batch_sweep_table(result):
    """`experiments/batch_sweep.py`'s figures: ms/step and images/s per batch size, then the fitted line."""
    lines = [tables.markdown(pd.DataFrame(
        [[str(r["batch_size"]), f"{r['ms_per_step']:.1f}", f"{r['images_per_s']:.0f}", f"{r['residual_ms']:+.1f} ms"]
         for r in result["rows"]], columns=["batch size", "ms/step", "images/s", "line's residual"]))]
    fixed, per_image, limit = result["fixed_ms_per_step"], result["ms_per_image"], result["limit_images_per_s"]
    line = (f"Least squares over the batch sizes (R² {result['r2']:.3f}): **{fixed:.1f} ms per step + "
            f"{1000 * per_image:.0f} µs per image**")
    if per_image <= 0:
        return "\n".join(lines + ["", line + ": the step time did not grow with the batch size (noise, or too "
                                               "few steps), so the line bounds nothing."])
    if not limit:
        return "\n".join(lines + ["", line + ": a negative fixed cost, below what was measured, so the line "
                                               "bounds nothing (noise, or too few steps)."])
    activations = (f"The forward pass writes at most {result['forward_activation_bytes_per_image'] / 1024:.0f} KiB "
                   f"of activations per image: {result['forward_activation_gb_per_s_at_limit']:.1f} GB/s at that "
                   "rate" + (f", against {result['copy_gb_per_s']:.1f} GB/s for a 256 MiB copy on one thread."
                             if result.get("copy_gb_per_s") else "."))
    lines += ["", line + f", so by the line no batch size passes **{limit:,.0f} images/s**. " + activations]
    return "\n".join(lines)
