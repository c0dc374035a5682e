using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// Plain MLP feed-forward (dinov3 <c>layers/ffn_layers.py::Mlp</c>, used by ViT-S/16, ViT-B/16, ViT-L/16):
/// y = fc2( GELU(fc1 x) ) with exact (erf) GELU; dropout is 0 in every release and omitted.
/// Keys: <c>fc1.*</c> [hidden, in], <c>fc2.*</c> [in, hidden].
/// </summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    readonly Linear fc1, fc2;

    /// <summary>Creates fc1: in → hidden and fc2: hidden → in.</summary>
    public Mlp(int inFeatures, int hiddenFeatures, bool bias) : base(nameof(Mlp))
    {
        fc1 = nn.Linear(inFeatures, hiddenFeatures, hasBias: bias);
        fc2 = nn.Linear(hiddenFeatures, inFeatures, hasBias: bias);
        RegisterComponents();
    }

    /// <summary>fc2(GELU(fc1 x)).</summary>
    public override Tensor forward(Tensor x)
    {
        using var h = fc1.forward(x);
        using var a = nn.functional.gelu(h);
        return fc2.forward(a);
    }
}
