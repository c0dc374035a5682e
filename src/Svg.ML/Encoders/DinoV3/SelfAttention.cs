using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// Multi-head self-attention with axial RoPE on the patch tokens (dinov3 <c>layers/attention.py::SelfAttention</c>):
/// <code>
///   [q | k | v] = qkv(x)                 reshaped [B, N, 3, heads, d] (rows of qkv.weight: q, k, v; head-major)
///   q, k ← RoPE(q, k) on the last H·W tokens only (class and storage tokens are not rotated)
///   o = softmax(q kᵀ / √d) v             per head (scaled dot-product attention)
///   y = proj(o)                          heads concatenated back to [B, N, D]
/// </code>
/// Keys: <c>qkv.weight</c>, <c>qkv.bias</c> (+ <c>qkv.bias_mask</c> with masked k-bias), <c>proj.weight</c>, <c>proj.bias</c>.
/// </summary>
public sealed class SelfAttention : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
{
    readonly nn.Module<Tensor, Tensor> qkv;
    readonly Linear proj;
    readonly int _numHeads;

    /// <summary>Creates the attention of a block of width <paramref name="dim"/>.</summary>
    public SelfAttention(int dim, int numHeads, bool qkvBias, bool projBias, bool maskKBias) : base(nameof(SelfAttention))
    {
        _numHeads = numHeads;
        qkv = maskKBias ? new LinearKMaskedBias(dim, 3 * dim, qkvBias) : nn.Linear(dim, 3 * dim, hasBias: qkvBias);
        proj = nn.Linear(dim, dim, hasBias: projBias);
        RegisterComponents();
    }

    /// <summary>[B, N, D] → [B, N, D]; <paramref name="sin"/>/<paramref name="cos"/> [H·W, d] from
    /// <see cref="RopePositionEmbedding"/>, or null for no RoPE.</summary>
    public override Tensor forward(Tensor x, Tensor? sin, Tensor? cos)
    {
        using var scope = NewDisposeScope();
        long B = x.shape[0], N = x.shape[1], C = x.shape[2];
        var qkvOut = qkv.forward(x).reshape(B, N, 3, _numHeads, C / _numHeads);
        var parts = qkvOut.unbind(2);
        var q = parts[0].transpose(1, 2);   // [B, heads, N, d]
        var k = parts[1].transpose(1, 2);
        var v = parts[2].transpose(1, 2);
        if (sin is not null && cos is not null) (q, k) = ApplyRope(q, k, sin, cos);
        var o = nn.functional.scaled_dot_product_attention(q, k, v);    // softmax(q kᵀ / √d) v
        o = o.transpose(1, 2).reshape(B, N, C);
        return scope.MoveToOuter(proj.forward(o));
    }

    /// <summary>
    /// Rotates the last H·W tokens of q and k (computed in the RoPE dtype, cast back): the first N − H·W tokens
    /// (class + storage) pass unchanged.
    /// </summary>
    static (Tensor Q, Tensor K) ApplyRope(Tensor q, Tensor k, Tensor sin, Tensor cos)
    {
        var qDtype = q.dtype;
        var kDtype = k.dtype;
        q = q.to(sin.dtype);
        k = k.to(sin.dtype);
        long n = q.shape[2];
        long prefix = n - sin.shape[^2];
        if (prefix < 0) throw new ArgumentException($"RoPE covers {sin.shape[^2]} tokens but the sequence has only {n}.");
        q = cat(new[] { q.narrow(2, 0, prefix), RopePositionEmbedding.Apply(q.narrow(2, prefix, n - prefix), sin, cos) }, dim: 2);
        k = cat(new[] { k.narrow(2, 0, prefix), RopePositionEmbedding.Apply(k.narrow(2, prefix, n - prefix), sin, cos) }, dim: 2);
        return (q.to(qDtype), k.to(kDtype));
    }
}
