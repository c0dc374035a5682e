namespace Svg.ML.Autoencoder;

/// <summary>
/// Configuration of the LDM convolutional decoder (the <c>ddconfig</c> of the official SVG autoencoder; only the
/// decoder-relevant fields). Channel widths are <c>Ch · ChMult[level]</c>; every width must be a multiple of 32
/// (GroupNorm with 32 groups).
/// </summary>
/// <param name="Ch">Base channel count (<c>ch</c>).</param>
/// <param name="ChMult">Width multiplier per resolution level, lowest-level first (<c>ch_mult</c>).</param>
/// <param name="NumResBlocks">ResNet blocks per level in the encoder; the decoder uses <c>NumResBlocks + 1</c> (<c>num_res_blocks</c>).</param>
/// <param name="AttnResolutions">Resolutions (in pixels of the nominal <see cref="Resolution"/> grid) at which
/// single-head attention follows each ResNet block (<c>attn_resolutions</c>).</param>
/// <param name="ZChannels">Latent channels (<c>z_channels</c>; SVG: 384 DINOv3 + 8 residual = 392).</param>
/// <param name="Resolution">Nominal output resolution (<c>resolution</c>); it only decides where attention sits,
/// the decoder itself accepts latents of any spatial size.</param>
/// <param name="OutCh">Output image channels (<c>out_ch</c>).</param>
/// <param name="Dropout">Dropout inside the ResNet blocks (training only).</param>
public sealed record LdmDecoderConfig(
    int Ch,
    IReadOnlyList<int> ChMult,
    int NumResBlocks,
    IReadOnlyList<int> AttnResolutions,
    int ZChannels,
    int Resolution,
    int OutCh = 3,
    double Dropout = 0.0)
{
    /// <summary>GroupNorm group count of the official <c>Normalize</c>.</summary>
    public const int NormGroups = 32;

    /// <summary>GroupNorm epsilon of the official <c>Normalize</c>.</summary>
    public const double NormEps = 1e-6;

    /// <summary>
    /// The released SVG autoencoder's decoder (<c>svg_autoencoder_dinov3s16p_vit-s_epoch40.ckpt</c>): ch 128,
    /// ch_mult [1,1,2,2,4], 2 res blocks, attention at 16, 392 latent channels, 256 px (~43.1M parameters).
    /// </summary>
    public static LdmDecoderConfig Released { get; } = new(
        Ch: 128, ChMult: [1, 1, 2, 2, 4], NumResBlocks: 2, AttnResolutions: [16], ZChannels: 392, Resolution: 256);

    /// <summary>Number of resolution levels (<c>len(ch_mult)</c>).</summary>
    public int NumResolutions => ChMult.Count;

    /// <summary>Spatial up-sampling factor of the decoder: <c>2^(levels-1)</c>.</summary>
    public int UpsampleFactor => 1 << (NumResolutions - 1);

    /// <summary>The latent side length the decoder was designed for: <c>Resolution / 2^(levels-1)</c>.</summary>
    public int LatentResolution => Resolution / UpsampleFactor;

    /// <summary>Throws <see cref="ArgumentException"/> when the configuration cannot build a decoder.</summary>
    public void Validate()
    {
        if (Ch <= 0 || ChMult.Count == 0 || ChMult.Any(m => m <= 0))
            throw new ArgumentException($"LdmDecoderConfig: Ch ({Ch}) and every ChMult entry must be positive and ChMult non-empty.");
        foreach (int m in ChMult)
            if (Ch * m % NormGroups != 0)
                throw new ArgumentException($"LdmDecoderConfig: width Ch·mult = {Ch * m} is not a multiple of {NormGroups} (GroupNorm groups).");
        if (NumResBlocks < 0) throw new ArgumentException("LdmDecoderConfig: NumResBlocks must be >= 0.");
        if (ZChannels <= 0 || OutCh <= 0) throw new ArgumentException("LdmDecoderConfig: ZChannels and OutCh must be positive.");
        if (Dropout is < 0 or >= 1) throw new ArgumentException("LdmDecoderConfig: Dropout must be in [0, 1).");
    }
}
