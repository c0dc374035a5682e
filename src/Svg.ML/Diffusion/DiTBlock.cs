using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>adaLN modulation shared by the DiT blocks and the final layer.</summary>
public static class AdaLN
{
    /// <summary><c>modulate(x, shift, scale) = x · (1 + scale) + shift</c>, with shift/scale <c>[B, D]</c> broadcast over the tokens of x <c>[B, T, D]</c>.</summary>
    public static Tensor Modulate(Tensor x, Tensor shift, Tensor scale) => x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1);

    /// <summary><c>Sequential(SiLU, Linear(hidden, chunks·hidden))</c>: the <c>adaLN_modulation</c> projection (keys <c>adaLN_modulation.1.*</c>).</summary>
    internal static Sequential Projection(int hiddenSize, int chunks, Device? device) => nn.Sequential(
        ("0", nn.SiLU()),
        ("1", nn.Linear(hiddenSize, chunks * hiddenSize, hasBias: true, device: device)));
}

/// <summary>
/// Multi-head self-attention with optional QK-norm (models_SVG <c>Attention</c>, qkv bias on):
/// <code>
/// q, k, v = qkv(x).reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
/// q, k    = q_norm(q), k_norm(k)                 (affine LayerNorm over head_dim, eps 1e-5)
/// out     = proj(SDPA(q, k, v).transpose(1, 2).reshape(B, N, heads·head_dim))
/// </code>
/// </summary>
public sealed class DiTAttention : nn.Module<Tensor, Tensor>
{
    /// <summary>LayerNorm epsilon of the QK-norm (PyTorch default).</summary>
    public const double QkNormEps = 1e-5;

    readonly int _numHeads, _headDim;
#pragma warning disable IDE1006
    readonly Linear qkv;
    readonly LayerNorm? q_norm;
    readonly LayerNorm? k_norm;
    readonly Linear proj;
#pragma warning restore IDE1006

    /// <summary>Creates the attention over width <paramref name="dim"/>.</summary>
    public DiTAttention(int dim, int numHeads, int headDim, bool qkNorm, Device? device = null) : base(nameof(DiTAttention))
    {
        _numHeads = numHeads;
        _headDim = headDim;
        qkv = nn.Linear(dim, 3 * numHeads * headDim, hasBias: true, device: device);
        if (qkNorm)
        {
            q_norm = nn.LayerNorm(headDim, eps: QkNormEps, elementwise_affine: true, device: device);
            k_norm = nn.LayerNorm(headDim, eps: QkNormEps, elementwise_affine: true, device: device);
        }
        proj = nn.Linear(numHeads * headDim, dim, hasBias: true, device: device);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        long b = x.shape[0], n = x.shape[1];
        Tensor[] qkvs = qkv.call(x).reshape(b, n, 3, _numHeads, _headDim).permute(2, 0, 3, 1, 4).unbind(0);
        Tensor q = qkvs[0], k = qkvs[1], v = qkvs[2];
        if (q_norm is not null) q = q_norm.call(q);
        if (k_norm is not null) k = k_norm.call(k);
        Tensor attended = nn.functional.scaled_dot_product_attention(q, k, v);     // softmax(q kᵀ / √head_dim) v
        return proj.call(attended.transpose(1, 2).reshape(b, n, _numHeads * _headDim));
    }
}

/// <summary>timm <c>Mlp</c> as used by DiT: <c>fc2(GELU_tanh(fc1(x)))</c>.</summary>
public sealed class DiTMlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Linear fc1;
    readonly Linear fc2;
#pragma warning restore IDE1006

    /// <summary>Creates <c>Linear(dim, hidden) → GELU(tanh) → Linear(hidden, dim)</c>.</summary>
    public DiTMlp(int dim, int hidden, Device? device = null) : base(nameof(DiTMlp))
    {
        fc1 = nn.Linear(dim, hidden, hasBias: true, device: device);
        fc2 = nn.Linear(hidden, dim, hasBias: true, device: device);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) =>
        fc2.call(nn.functional.gelu(fc1.call(x), GELU.Approximate.tanh));
}

/// <summary>
/// DiT block with adaLN-Zero conditioning (<c>DiTBlock</c>):
/// <code>
/// shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = adaLN_modulation(c).chunk(6)
/// x = x + gate_msa · attn(modulate(norm1(x), shift_msa, scale_msa))
/// x = x + gate_mlp · mlp (modulate(norm2(x), shift_mlp, scale_mlp))
/// </code>
/// norm1/norm2 are LayerNorms without affine parameters, eps 1e-6.
/// </summary>
public sealed class DiTBlock : nn.Module<Tensor, Tensor, Tensor>
{
    /// <summary>Epsilon of the non-affine block LayerNorms.</summary>
    public const double NormEps = 1e-6;

#pragma warning disable IDE1006
    readonly LayerNorm norm1;
    readonly DiTAttention attn;
    readonly LayerNorm norm2;
    readonly DiTMlp mlp;
    readonly Sequential adaLN_modulation;
#pragma warning restore IDE1006

    /// <summary>Creates a block of the given <paramref name="config"/>.</summary>
    public DiTBlock(SvgDiTConfig config, Device? device = null) : base(nameof(DiTBlock))
    {
        int h = config.HiddenSize;
        norm1 = nn.LayerNorm(h, eps: NormEps, elementwise_affine: false, device: device);
        attn = new DiTAttention(h, config.NumHeads, config.ResolvedHeadDim, config.QkNorm, device);
        norm2 = nn.LayerNorm(h, eps: NormEps, elementwise_affine: false, device: device);
        mlp = new DiTMlp(h, config.MlpHidden, device);
        adaLN_modulation = AdaLN.Projection(h, 6, device);
        RegisterComponents();
    }

    /// <summary>The adaLN projection (<c>adaLN_modulation.1</c>), zero-initialised by <see cref="SvgDiT"/>.</summary>
    internal Linear Modulation => (Linear)adaLN_modulation[1];

    /// <summary>Applies the block to tokens <paramref name="x"/> <c>[B, T, D]</c> under conditioning <paramref name="c"/> <c>[B, D]</c>.</summary>
    public override Tensor forward(Tensor x, Tensor c)
    {
        // The block's intermediates die with it (autograd keeps what backward needs), so inference holds one block's.
        using var scope = NewDisposeScope();
        Tensor[] m = adaLN_modulation.call(c).chunk(6, 1);
        Tensor shiftMsa = m[0], scaleMsa = m[1], gateMsa = m[2], shiftMlp = m[3], scaleMlp = m[4], gateMlp = m[5];
        x = x + gateMsa.unsqueeze(1) * attn.call(AdaLN.Modulate(norm1.call(x), shiftMsa, scaleMsa));
        x = x + gateMlp.unsqueeze(1) * mlp.call(AdaLN.Modulate(norm2.call(x), shiftMlp, scaleMlp));
        return scope.MoveToOuter(x);
    }
}

/// <summary>
/// DiT output layer (<c>FinalLayer</c>): <c>shift, scale = adaLN_modulation(c).chunk(2)</c>;
/// <c>linear(modulate(norm_final(x), shift, scale))</c> → <c>[B, T, p²·out_channels]</c>.
/// </summary>
public sealed class DiTFinalLayer : nn.Module<Tensor, Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly LayerNorm norm_final;
    readonly Linear linear;
    readonly Sequential adaLN_modulation;
#pragma warning restore IDE1006

    /// <summary>Creates the output layer mapping width <paramref name="hiddenSize"/> to <paramref name="outFeatures"/>.</summary>
    public DiTFinalLayer(int hiddenSize, int outFeatures, Device? device = null) : base(nameof(DiTFinalLayer))
    {
        norm_final = nn.LayerNorm(hiddenSize, eps: DiTBlock.NormEps, elementwise_affine: false, device: device);
        linear = nn.Linear(hiddenSize, outFeatures, hasBias: true, device: device);
        adaLN_modulation = AdaLN.Projection(hiddenSize, 2, device);
        RegisterComponents();
    }

    /// <summary>The output projection (<c>linear</c>) and the adaLN projection (<c>adaLN_modulation.1</c>), zero-initialised by <see cref="SvgDiT"/>.</summary>
    internal (Linear Output, Linear Modulation) Layers => (linear, (Linear)adaLN_modulation[1]);

    /// <inheritdoc/>
    public override Tensor forward(Tensor x, Tensor c)
    {
        Tensor[] m = adaLN_modulation.call(c).chunk(2, 1);
        return linear.call(AdaLN.Modulate(norm_final.call(x), m[0], m[1]));
    }
}
