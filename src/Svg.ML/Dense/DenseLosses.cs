using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense;

/// <summary>The training losses of the dense heads.</summary>
public static class DenseLosses
{
    /// <summary>The ignore value of segmentation targets (mmseg, Pascal VOC).</summary>
    public const long IgnoreIndex = 255;

    /// <summary>SILog's λ (Eigen et al. 2014; BTS and the DINOv2 depth probes use 0.85).</summary>
    public const double SilogLambda = 0.85;

    /// <summary>
    /// Pixel-averaged cross-entropy over the pixels whose target is not <paramref name="ignoreIndex"/>:
    /// <c>Σ_valid −log softmax(logits)[target] / #valid</c> (torch's <c>cross_entropy(ignore_index)</c> with mean
    /// reduction), and 0 — not NaN — when every pixel is ignored.
    /// </summary>
    /// <param name="logits"><c>[N, K, H, W]</c>.</param>
    /// <param name="target"><c>[N, H, W]</c> int64 class indices in [0, K) or <paramref name="ignoreIndex"/>.</param>
    /// <param name="ignoreIndex">Target value excluded from the loss.</param>
    public static Tensor CrossEntropy(Tensor logits, Tensor target, long ignoreIndex = IgnoreIndex)
    {
        using var scope = NewDisposeScope();
        var t = target.to(ScalarType.Int64);
        var valid = t.ne(ignoreIndex);
        var sum = nn.functional.cross_entropy(logits, t, ignore_index: ignoreIndex, reduction: nn.Reduction.Sum);
        return sum.div(valid.sum().clamp_min(1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Scale-invariant log loss (Eigen et al. 2014) on the valid pixels (target finite and in
    /// (<paramref name="minDepth"/>, <paramref name="maxDepth"/>)), with e = ln d − ln g:
    /// <c>L = √( mean(e²) − λ·mean(e)² + 1e-8 )</c>, λ = 0.85, pooled over all valid pixels of the batch. The 1e-8 keeps
    /// the gradient finite at a perfect fit (it moves L by at most 1e-4, and by &lt; 1e-6 once L &gt; 0.005).
    /// Returns 0 when no pixel is valid.
    /// </summary>
    /// <param name="logDepth">ln of the predicted depth, <c>[N, H, W]</c> (e.g. <see cref="DenseHead.LogDepthFromRaw"/>).</param>
    /// <param name="target">Ground-truth depth in metres, <c>[N, H, W]</c>; 0, NaN and out-of-range values are invalid.</param>
    /// <param name="minDepth">Lower cap (exclusive).</param>
    /// <param name="maxDepth">Upper cap (exclusive).</param>
    /// <param name="lambda">λ (0: plain RMSE of log depth; 1: fully scale-invariant).</param>
    public static Tensor Silog(Tensor logDepth, Tensor target, double minDepth = DepthMetrics.DefaultMinDepth,
                               double maxDepth = DepthMetrics.DefaultMaxDepth, double lambda = SilogLambda)
    {
        using var scope = NewDisposeScope();
        var valid = DepthMetrics.ValidMask(target, minDepth, maxDepth);
        var count = valid.sum().clamp_min(1).to(logDepth.dtype);
        var safeTarget = where(valid, target, ones_like(target));          // ln of invalid pixels never evaluated as NaN
        var e = where(valid, logDepth - safeTarget.log(), zeros_like(logDepth));
        var meanE = e.sum() / count;
        var meanE2 = e.square().sum() / count;
        var loss = (meanE2 - lambda * meanE.square()).clamp_min(0).add(1e-8).sqrt();
        return where(valid.any(), loss, zeros_like(loss)).MoveToOuterDisposeScope();
    }
}
