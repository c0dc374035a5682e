using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// SwiGLU feed-forward (dinov3 <c>layers/ffn_layers.py::SwiGLUFFN</c>): y = w3( silu(w1 x) ⊙ (w2 x) ).
/// Keys: <c>w1.*</c>, <c>w2.*</c> [hidden, in], <c>w3.*</c> [in, hidden].
/// </summary>
public sealed class SwiGluFfn : nn.Module<Tensor, Tensor>
{
    readonly Linear w1, w2, w3;

    /// <param name="inFeatures">Token width.</param>
    /// <param name="hiddenFeatures">The already aligned SwiGLU width (<see cref="DinoV3Config.SwiGluHiddenDim"/>).</param>
    /// <param name="bias">Whether the three linears have biases.</param>
    public SwiGluFfn(int inFeatures, int hiddenFeatures, bool bias) : base(nameof(SwiGluFfn))
    {
        w1 = nn.Linear(inFeatures, hiddenFeatures, hasBias: bias);
        w2 = nn.Linear(inFeatures, hiddenFeatures, hasBias: bias);
        w3 = nn.Linear(hiddenFeatures, inFeatures, hasBias: bias);
        RegisterComponents();
    }

    /// <summary>w3(silu(w1 x) ⊙ w2 x).</summary>
    public override Tensor forward(Tensor x)
    {
        using var x1 = w1.forward(x);
        using var x2 = w2.forward(x);
        using var gate = nn.functional.silu(x1);
        using var hidden = gate * x2;
        return w3.forward(hidden);
    }
}
