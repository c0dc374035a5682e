using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// A pre-norm transformer block (dinov3 <c>layers/block.py::SelfAttentionBlock</c>, eval path):
/// <code>
///   x = x + ls1( attn( norm1(x), rope ) )
///   x = x + ls2( mlp( norm2(x) ) )
/// </code>
/// Keys: <c>norm1.*</c>, <c>attn.*</c>, <c>ls1.gamma</c>, <c>norm2.*</c>, <c>mlp.*</c> (w1/w2/w3 or fc1/fc2),
/// <c>ls2.gamma</c> (LayerScale keys only when <see cref="DinoV3Config.LayerScaleInit"/> is set).
/// </summary>
public sealed class SelfAttentionBlock : nn.Module<Tensor, Tensor?, Tensor?, Tensor>
{
    readonly LayerNorm norm1, norm2;
    readonly SelfAttention attn;
    readonly nn.Module<Tensor, Tensor> ls1, ls2, mlp;

    /// <summary>Creates one block of <paramref name="config"/>.</summary>
    public SelfAttentionBlock(DinoV3Config config) : base(nameof(SelfAttentionBlock))
    {
        int dim = config.EmbedDim;
        norm1 = nn.LayerNorm(dim, eps: config.NormEps);
        attn = new SelfAttention(dim, config.NumHeads, config.QkvBias, config.ProjBias, config.MaskKBias);
        ls1 = MakeLayerScale(config);
        norm2 = nn.LayerNorm(dim, eps: config.NormEps);
        mlp = config.FfnLayer == DinoV3FfnLayer.SwiGlu
            ? new SwiGluFfn(dim, config.SwiGluHiddenDim, config.FfnBias)
            : new Mlp(dim, config.FfnHiddenDim, config.FfnBias);
        ls2 = MakeLayerScale(config);
        RegisterComponents();
    }

    static nn.Module<Tensor, Tensor> MakeLayerScale(DinoV3Config config) =>
        config.LayerScaleInit is double init && init != 0 ? new LayerScale(config.EmbedDim, init) : nn.Identity();

    /// <summary>[B, N, D] → [B, N, D] with the RoPE (sin, cos) of the patch grid (or nulls).</summary>
    public override Tensor forward(Tensor x, Tensor? sin, Tensor? cos)
    {
        using var scope = NewDisposeScope();
        var xAttn = x + ls1.forward(attn.forward(norm1.forward(x), sin, cos));
        var xFfn = xAttn + ls2.forward(mlp.forward(norm2.forward(xAttn)));
        return scope.MoveToOuter(xFfn);
    }
}
