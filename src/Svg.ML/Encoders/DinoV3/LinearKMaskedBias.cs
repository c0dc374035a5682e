using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// The qkv projection with a masked key bias (dinov3 <c>layers/attention.py::LinearKMaskedBias</c>):
/// y = x Wᵀ + b ⊙ m, where the buffer m (<c>bias_mask</c>) is 1 on the q and v thirds and 0 on the k third.
/// Keys: <c>weight</c> [3D, D], <c>bias</c> [3D], <c>bias_mask</c> [3D] (a buffer, stored in the checkpoints).
/// The official constructor fills <c>bias_mask</c> with NaN until <c>init_weights()</c>; here it starts with the
/// initialised pattern.
/// </summary>
public sealed class LinearKMaskedBias : nn.Module<Tensor, Tensor>
{
    Parameter weight;
    Parameter? bias;
    Tensor? bias_mask;

    /// <summary>Creates a [outFeatures, inFeatures] projection; <paramref name="outFeatures"/> must be a multiple of 3.</summary>
    public LinearKMaskedBias(int inFeatures, int outFeatures, bool hasBias) : base(nameof(LinearKMaskedBias))
    {
        if (outFeatures % 3 != 0) throw new ArgumentException($"LinearKMaskedBias: out features {outFeatures} is not a multiple of 3.");
        // PyTorch nn.Linear default initialisation (kaiming-uniform weight, U(±1/√fan_in) bias).
        weight = nn.Parameter(empty(outFeatures, inFeatures));
        nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
        if (hasBias)
        {
            double bound = 1 / Math.Sqrt(inFeatures);
            bias = nn.Parameter(empty(outFeatures).uniform_(-bound, bound));
            bias_mask = InitialMask(outFeatures);
        }
        RegisterComponents();
    }

    /// <summary>The [3D, D] weight.</summary>
    public Parameter Weight => weight;

    /// <summary>The [3D] bias, or null.</summary>
    public Parameter? Bias => bias;

    /// <summary>The official init pattern: 1 on [0, o/3) and [2o/3, o), 0 on the k third [o/3, 2o/3).</summary>
    public static Tensor InitialMask(int outFeatures)
    {
        var mask = ones(outFeatures);
        using var kThird = mask.narrow(0, outFeatures / 3, 2 * outFeatures / 3 - outFeatures / 3);
        kThird.fill_(0);
        return mask;
    }

    /// <summary>Restores <c>bias_mask</c> to the init pattern (the official <c>init_weights_vit</c>).</summary>
    public void ResetMask()
    {
        if (bias_mask is null) return;
        using var _ = no_grad();
        using var pattern = InitialMask((int)bias_mask.shape[0]);
        bias_mask.copy_(pattern);
    }

    /// <summary>x Wᵀ + b ⊙ bias_mask.</summary>
    public override Tensor forward(Tensor x)
    {
        if (bias is null) return nn.functional.linear(x, weight);
        using var maskedBias = bias * bias_mask!.to(bias.dtype);
        return nn.functional.linear(x, weight, maskedBias);
    }
}
