using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>LayerScale (dinov3 <c>layers/layer_scale.py</c>): y = x ⊙ γ, one learned scale per channel. Key: <c>gamma</c>.</summary>
public sealed class LayerScale : nn.Module<Tensor, Tensor>
{
    Parameter gamma;
    readonly double _initValue;

    /// <summary>Creates γ filled with <paramref name="initValue"/> (the official <c>reset_parameters</c>).</summary>
    public LayerScale(int dim, double initValue) : base(nameof(LayerScale))
    {
        _initValue = initValue;
        gamma = nn.Parameter(full(dim, initValue));
        RegisterComponents();
    }

    /// <summary>x ⊙ γ.</summary>
    public override Tensor forward(Tensor x) => x * gamma;

    /// <summary>γ ← init value.</summary>
    public void ResetParameters()
    {
        using var _ = no_grad();
        gamma.fill_(_initValue);
    }
}
