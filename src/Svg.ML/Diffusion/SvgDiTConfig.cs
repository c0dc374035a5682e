namespace Svg.ML.Diffusion;

/// <summary>
/// Configuration of the SVG diffusion transformer (<c>models/models_SVG.py::DiT</c>): a DiT over the latent tokens
/// <c>[B, GridSize², InChannels]</c> with a linear input projection (patch size 1), adaLN-Zero blocks and QK-norm.
/// </summary>
/// <param name="InChannels">Latent channels per token (<c>in_channels</c>; SVG: 392).</param>
/// <param name="HiddenSize">Transformer width (<c>hidden_size</c>).</param>
/// <param name="Depth">Number of DiT blocks (<c>depth</c>).</param>
/// <param name="NumHeads">Attention heads (<c>num_heads</c>).</param>
/// <param name="MlpRatio">MLP hidden width = <c>int(HiddenSize · MlpRatio)</c> (<c>mlp_ratio</c>).</param>
/// <param name="NumClasses">Class labels; label <c>NumClasses</c> is the null (unconditional) class when
/// <see cref="ClassDropoutProb"/> &gt; 0 (<c>num_classes</c>).</param>
/// <param name="ClassDropoutProb">Training label-dropout probability for classifier-free guidance (<c>class_dropout_prob</c>).</param>
/// <param name="LearnSigma">Output 2·InChannels channels (the second half is unused by the flow loss and sampler) (<c>learn_sigma</c>).</param>
/// <param name="QkNorm">Affine per-head LayerNorm (eps 1e-5) on queries and keys (<c>qk_norm</c>).</param>
/// <param name="GridSize">Side of the square token grid; tokens = GridSize². The official fixes 16 (256 tokens).</param>
/// <param name="PatchSize">Patch size; SVG uses 1 (tokens are latent positions), the only supported value.</param>
/// <param name="HeadDim">Per-head width override (<c>head_dim</c>); null means <c>HiddenSize / NumHeads</c>.</param>
public sealed record SvgDiTConfig(
    int InChannels,
    int HiddenSize,
    int Depth,
    int NumHeads,
    double MlpRatio = 4.0,
    int NumClasses = 1000,
    double ClassDropoutProb = 0.1,
    bool LearnSigma = true,
    bool QkNorm = true,
    int GridSize = 16,
    int PatchSize = 1,
    int? HeadDim = null)
{
    /// <summary>SVG latent channels: 384 DINOv3 ViT-S+/16 channels + 8 residual channels.</summary>
    public const int SvgLatentChannels = 392;

    /// <summary>DiT-S: depth 12, width 384, 6 heads.</summary>
    public static SvgDiTConfig S { get; } = new(SvgLatentChannels, HiddenSize: 384, Depth: 12, NumHeads: 6);

    /// <summary>DiT-B: depth 12, width 768, 12 heads.</summary>
    public static SvgDiTConfig B { get; } = new(SvgLatentChannels, HiddenSize: 768, Depth: 12, NumHeads: 12);

    /// <summary>DiT-L: depth 24, width 1024, 16 heads.</summary>
    public static SvgDiTConfig L { get; } = new(SvgLatentChannels, HiddenSize: 1024, Depth: 24, NumHeads: 16);

    /// <summary>DiT-XL: depth 28, width 1152, 16 heads (~676M parameters) — the released SVG-XL model.</summary>
    public static SvgDiTConfig XL { get; } = new(SvgLatentChannels, HiddenSize: 1152, Depth: 28, NumHeads: 16);

    /// <summary>DiT-XXL: depth 32, width 1280, 20 heads.</summary>
    public static SvgDiTConfig XXL { get; } = new(SvgLatentChannels, HiddenSize: 1280, Depth: 32, NumHeads: 20);

    /// <summary>Per-head width: <see cref="HeadDim"/> or <c>HiddenSize / NumHeads</c>.</summary>
    public int ResolvedHeadDim => HeadDim ?? HiddenSize / NumHeads;

    /// <summary>Output channels per token: <c>2·InChannels</c> with <see cref="LearnSigma"/>, else <c>InChannels</c>.</summary>
    public int OutChannels => LearnSigma ? 2 * InChannels : InChannels;

    /// <summary>Tokens per sample: <c>GridSize²</c>.</summary>
    public int NumTokens => GridSize * GridSize;

    /// <summary>MLP hidden width: <c>int(HiddenSize · MlpRatio)</c>.</summary>
    public int MlpHidden => (int)(HiddenSize * MlpRatio);

    /// <summary>The null (unconditional) label, <c>NumClasses</c>; it has an embedding row only when <see cref="ClassDropoutProb"/> &gt; 0.</summary>
    public int NullClass => NumClasses;

    /// <summary>Rows of the label embedding table: <c>NumClasses + 1</c> with class dropout, else <c>NumClasses</c>.</summary>
    public int LabelTableRows => NumClasses + (ClassDropoutProb > 0 ? 1 : 0);

    /// <summary>Throws <see cref="ArgumentException"/> when the configuration cannot build a model.</summary>
    public void Validate()
    {
        if (InChannels <= 0 || HiddenSize <= 0 || Depth < 0 || NumHeads <= 0 || NumClasses <= 0 || GridSize <= 0)
            throw new ArgumentException($"SvgDiTConfig: sizes must be positive ({this}).");
        if (PatchSize != 1)
            throw new ArgumentException($"SvgDiTConfig: only PatchSize 1 is supported (the SVG DiT projects each latent token linearly); got {PatchSize}.");
        if (HeadDim is null && HiddenSize % NumHeads != 0)
            throw new ArgumentException($"SvgDiTConfig: HiddenSize {HiddenSize} is not divisible by NumHeads {NumHeads}.");
        if (HiddenSize % 4 != 0)
            throw new ArgumentException($"SvgDiTConfig: HiddenSize {HiddenSize} must be a multiple of 4 (2-D sin-cos position embedding).");
        if (ClassDropoutProb is < 0 or > 1) throw new ArgumentException("SvgDiTConfig: ClassDropoutProb must be in [0, 1].");
    }
}
