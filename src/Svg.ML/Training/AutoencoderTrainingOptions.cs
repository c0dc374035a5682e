using System.Text.Json;
using System.Text.Json.Nodes;
using Svg.ML.Autoencoder;
using Svg.ML.Data;

namespace Svg.ML.Training;

/// <summary>
/// Settings of stage 1, the SVG autoencoder (<see cref="AutoencoderTraining"/>): the residual encoder (+ mask token)
/// and an LDM decoder trained on a frozen base encoder. Defaults follow the official recipe
/// (<c>example_svg_autoencoder_vitsp.yaml</c>, <c>DinoDecoder.configure_optimizers</c>, <c>LPIPSWithDiscriminatorDecoder</c>):
/// Adam, learning rate 1e-4, betas (0.5, 0.9), loss Σ|x − x̂| (+ 1.0·LPIPS) per image, optional hinge GAN with the
/// adaptive weight × 0.5 from step 5001. The official batch is 64 per GPU on 8 GPUs.
/// </summary>
public sealed record AutoencoderTrainingOptions : TrainingOptions
{
    /// <summary>The official defaults (batch 64, betas (0.5, 0.9)).</summary>
    public AutoencoderTrainingOptions()
    {
        BatchSize = 64;
        Beta1 = 0.5;
        Beta2 = 0.9;
    }

    /// <summary>The decoder to build (ignored when a decoder is passed to <see cref="AutoencoderTraining.Train(SvgEncoder, LabeledImages, AutoencoderTrainingOptions, LdmDecoder?)"/>).
    /// Null: <see cref="LdmDecoderConfig.Released"/> with <c>ZChannels</c> = the encoder's channels and
    /// <c>Resolution</c> = <see cref="ImageSize"/>.</summary>
    public LdmDecoderConfig? Decoder { get; init; }

    /// <summary>Training image size (square); null: the residual encoder's <c>ImageSize</c> (256 for the release).</summary>
    public int? ImageSize { get; init; }

    /// <summary>How images are brought to <see cref="ImageSize"/> (the official training random-crops; here the
    /// same deterministic resize is used every epoch).</summary>
    public ResizeMode Resize { get; init; } = ResizeMode.CenterCrop;

    /// <summary>
    /// The perceptual loss (<see cref="Lpips.Load"/> from user-supplied weights). Null: LPIPS is off — the loss is
    /// L1 only, and the result says so (<see cref="AutoencoderTrainingResult.LossDescription"/>). Not disposed by
    /// the trainer.
    /// </summary>
    public Lpips? Lpips { get; init; }

    /// <summary>LPIPS weight (<c>perceptual_weight</c>, 1.0).</summary>
    public double PerceptualWeight { get; init; } = 1.0;

    /// <summary>Adds the hinge GAN (PatchGAN <see cref="NLayerDiscriminator"/>, adaptive weight) from
    /// <see cref="DiscStart"/> on. Official: on.</summary>
    public bool Gan { get; init; }

    /// <summary>
    /// First (0-based) step with the GAN (<c>disc_start</c>, 5001). Before it the discriminator is neither evaluated
    /// nor trained (the official code evaluates it with weight 0, which changes no weight). Note that PyTorch
    /// Lightning's <c>global_step</c>, against which the official value is compared, may count both optimisers' steps.
    /// </summary>
    public long DiscStart { get; init; } = AdversarialLoss.SvgDiscStart;

    /// <summary><c>disc_weight</c>: factor on the adaptive weight (0.5).</summary>
    public double DiscWeight { get; init; } = AdversarialLoss.SvgDiscWeight;

    /// <summary><c>disc_factor</c>: factor on the GAN terms once active (1.0).</summary>
    public double DiscFactor { get; init; } = 1.0;

    /// <summary>The discriminator's sizes.</summary>
    public NLayerDiscriminatorConfig Discriminator { get; init; } = NLayerDiscriminatorConfig.Svg;

    /// <summary>Held-out images for the reconstruction PSNR/SSIM report at the end (null: none).</summary>
    public LabeledImages? Validation { get; init; }

    /// <summary>At most this many validation images are evaluated.</summary>
    public int ValidationImages { get; init; } = 256;

    /// <summary>Also evaluate every this many steps (0: only at the end); results go to <see cref="TrainingOptions.Log"/>.</summary>
    public int EvaluateEvery { get; init; }

    /// <summary>Estimate the <see cref="ResidualAlignment.Stored"/> statistics after training (sets
    /// <see cref="SvgEncoder.Statistics"/>; the encoder's alignment mode is left as configured).</summary>
    public bool EstimateAlignment { get; init; } = true;

    /// <summary>At most this many training images feed the alignment estimate.</summary>
    public int AlignmentImages { get; init; } = 2048;

    internal override void Validate()
    {
        base.Validate();
        if (ImageSize is <= 0) throw new ArgumentException("ImageSize must be positive.");
        if (PerceptualWeight < 0 || DiscWeight < 0 || DiscFactor < 0) throw new ArgumentException("Loss weights must be >= 0.");
        if (DiscStart < 0) throw new ArgumentException("DiscStart must be >= 0.");
        if (ValidationImages <= 0 || AlignmentImages <= 0 || EvaluateEvery < 0) throw new ArgumentException("ValidationImages and AlignmentImages must be positive, EvaluateEvery >= 0.");
    }

    /// <summary>Base settings plus model, loss and data.</summary>
    internal JsonObject TrajectoryJson(SvgEncoder encoder, LdmDecoderConfig decoder, int imageSize, LabeledImages data, string? lpipsFingerprint)
    {
        var json = TrajectoryJson();
        json["decoder"] = JsonSerializer.SerializeToNode(decoder);
        json["encoder"] = JsonSerializer.SerializeToNode(encoder.Config);
        json["base_encoder"] = $"{encoder.BaseEncoder.Name}|{FeatureCacheKey.DescribeEncoder(encoder.BaseEncoder)}|{FeatureCacheKey.FingerprintWeights(encoder.BaseEncoder.Module)}";
        json["image_size"] = imageSize;
        json["resize"] = Resize.ToString();
        json["lpips"] = lpipsFingerprint is null ? "off" : $"{PerceptualWeight}|{lpipsFingerprint}";
        json["gan"] = Gan ? $"start={DiscStart}|weight={DiscWeight}|factor={DiscFactor}|{JsonSerializer.Serialize(Discriminator)}" : "off";
        json["data"] = data.Identity;
        json["data_count"] = data.Count;
        return json;
    }
}
