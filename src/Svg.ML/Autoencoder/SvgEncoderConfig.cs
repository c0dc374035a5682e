using Svg.ML.Encoders;

namespace Svg.ML.Autoencoder;

/// <summary>How the residual features are matched to the distribution of the base (DINOv3) features.</summary>
public enum ResidualAlignment
{
    /// <summary>No alignment (official <c>use_outnorm=False</c>): the raw residual features are concatenated.</summary>
    None,

    /// <summary>The official <c>match_distribution</c> with statistics of the current batch (<c>use_outnorm=True</c>):
    /// a row's residual channels depend on the other rows of its batch.</summary>
    BatchStatistics,

    /// <summary>The same affine map with statistics estimated once over data (<see cref="AlignmentStatistics"/>):
    /// every row is encoded independently of its batch.</summary>
    Stored,
}

/// <summary>
/// Settings of <see cref="SvgEncoder"/> (the encoder half of the official <c>DinoDecoder</c>, with
/// <c>extra_vit_config = {output_dim, mask_ratio, use_outnorm}</c>).
/// </summary>
public sealed record SvgEncoderConfig
{
    /// <summary>The residual encoder (<c>extra_vit</c>); its output width is <c>extra_vit_config.output_dim</c>.</summary>
    public ResidualEncoderConfig Residual { get; init; } = ResidualEncoderConfig.Released;

    /// <summary>The official <c>embed_dim</c> (32). It only sizes the unused <c>norm_vit</c> LayerNorm
    /// (output_dim + embed_dim), kept so that the official checkpoint keys match.</summary>
    public int EmbedDim { get; init; } = 32;

    /// <summary><c>mask_ratio</c>: in training, each sample's residual features are replaced by <c>mask_token</c>
    /// with this probability. The parameter <c>mask_token</c> exists only when it is &gt; 0.</summary>
    public double MaskRatio { get; init; } = 0.1;

    /// <summary>Residual alignment (official <c>use_outnorm=True</c> is <see cref="ResidualAlignment.BatchStatistics"/>).</summary>
    public ResidualAlignment Alignment { get; init; } = ResidualAlignment.BatchStatistics;

    /// <summary>eps added to the residual std in the alignment (official 1e-6).</summary>
    public double AlignmentEps { get; init; } = 1e-6;

    /// <summary>
    /// When false (default) the frozen base encoder stays in eval mode when the <see cref="SvgEncoder"/> is put in
    /// training mode. The official Lightning training calls <c>model.train()</c> on the whole <c>DinoDecoder</c>, which
    /// (depending on the Lightning version) also puts DINOv3 in training mode, where its RoPE coordinates are randomly
    /// rescaled by up to ×2; set true to reproduce that.
    /// </summary>
    public bool BaseEncoderFollowsTrainMode { get; init; }

    /// <summary>
    /// The released SVG autoencoder's encoder settings (<c>svg_autoencoder_dinov3s16p_vit-s_epoch40</c>, trained with
    /// <c>example_svg_autoencoder_vitsp.yaml</c>): residual ViT at 256 px with 6 layers and 8 channels, embed_dim 32,
    /// mask_ratio 0.1 (so the checkpoint holds <c>mask_token</c>), batch-statistics alignment.
    /// </summary>
    public static SvgEncoderConfig Released => new();
}
