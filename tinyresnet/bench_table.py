"""The bench's figures as a Markdown table (no TensorFlow: the README's renderer reads it too)."""


def rows(result):
    """`[(measurement, result text)]` of a `tinyresnet-bench --json` result."""
    r = result
    out = [("matmul ceiling fp32", f"{r['ceiling_gflops_fp32']:.0f} GFLOP/s"),
           ("matmul ceiling bf16", f"{r['ceiling_gflops_bf16']:.0f} GFLOP/s")]
    for name, label in (("fp32", "float32"), ("bf16", "mixed_bfloat16")):
        out.append((f"train {label} (in memory)",
                    f"{r[f'train_ips_{name}']:.1f} images/s = {r[f'train_gflops_{name}']:.1f} GFLOP/s "
                    f"= {r[f'train_ceiling_fraction_{name}']:.2f} of its ceiling"))
    out.append(("bf16 / fp32 training speed", f"{r['bf16_speedup']:.2f}x"))
    if "auto_precision" in r:
        out.append(("precision=auto chooses",
                    f"{r['auto_precision']} ({r['auto_reason']}): {r['auto_speedup']:.2f}x float32, "
                    f"{r['auto_speedup'] / r['bf16_speedup']:.1f}x the speed of forced mixed_bfloat16"))
    if "decode_cache_ips" in r:
        out.append(("decode + cache (real archive)", f"{r['decode_cache_ips']:.0f} images/s"))
    if "augmented_epoch_ips" in r:
        out.append(("augmented epoch from cache, no model", f"{r['augmented_epoch_ips']:.0f} images/s"))
    if "pipeline_ips" in r:
        out.append(("train float32, real pipeline", f"{r['pipeline_ips']:.1f} images/s = {r['pipeline_ratio']:.2f} "
                    f"of in memory ({r['pipeline_memory_ips']:.1f})"))
    out.append(("exported model, batch 64", f"{r['export_ips_b64']:.0f} images/s = "
                f"{r['export_predict_ratio']:.2f} of model.predict ({r['predict_ips_b64']:.0f})"))
    out.append(("exported model, one image",
                f"p50 {r['export_latency_p50_ms']:.1f} ms, p95 {r['export_latency_p95_ms']:.1f} ms"))
    return out


def format_table(result):
    """The bench result as a Markdown table."""
    return "\n".join(["| measurement | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows(result)])
