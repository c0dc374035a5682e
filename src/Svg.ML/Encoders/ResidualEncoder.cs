using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders;

/// <summary>
/// Sizes of SVG's residual encoder: the official <c>create_small_vit_s</c> (shiml20/SVG
/// <c>autoencoder/ldm/models/dino_decoder.py</c>), a torchvision <c>VisionTransformer</c> whose classification head is
/// replaced by a per-token projection. The official function hard-codes everything but the image size, patch size
/// and output width; the released autoencoder uses <see cref="Released"/>.
/// </summary>
public sealed record ResidualEncoderConfig
{
    /// <summary><c>image_size</c>: the only input size accepted (torchvision asserts it); 256 in SVG.</summary>
    public int ImageSize { get; init; } = 256;

    /// <summary><c>patch_size</c>.</summary>
    public int PatchSize { get; init; } = 16;

    /// <summary><c>num_layers</c>: encoder blocks (6 in the official function).</summary>
    public int NumLayers { get; init; } = 6;

    /// <summary><c>num_heads</c>.</summary>
    public int NumHeads { get; init; } = 8;

    /// <summary><c>hidden_dim</c>: token width.</summary>
    public int HiddenDim { get; init; } = 384;

    /// <summary><c>mlp_dim</c>: hidden width of each block's MLP.</summary>
    public int MlpDim { get; init; } = 1536;

    /// <summary><c>output_dim</c>: the residual channels added to the SVG latent (8).</summary>
    public int OutputDim { get; init; } = 8;

    /// <summary><c>dropout</c> (after the position embedding, the attention and each MLP linear; training only).</summary>
    public double Dropout { get; init; } = 0.1;

    /// <summary><c>attention_dropout</c> (on the attention weights; training only).</summary>
    public double AttentionDropout { get; init; } = 0.1;

    /// <summary>LayerNorm eps of torchvision's ViT (1e-6).</summary>
    public double LayerNormEps { get; init; } = 1e-6;

    /// <summary>Patches per side: ImageSize / PatchSize (torchvision requires an exact multiple).</summary>
    public int GridSize => ImageSize / PatchSize;

    /// <summary>Tokens including the class token: GridSize² + 1.</summary>
    public int SequenceLength => GridSize * GridSize + 1;

    /// <summary>The residual encoder of the released SVG autoencoder: 256 px, patch 16, 6 layers, 8 heads, 384 wide,
    /// MLP 1536, 8 output channels (11,192,840 parameters).</summary>
    public static ResidualEncoderConfig Released => new();

    /// <summary>Checks the sizes (the torchvision constructor's assertions plus head divisibility).</summary>
    public void Validate()
    {
        if (ImageSize <= 0 || PatchSize <= 0 || NumLayers < 0 || NumHeads <= 0 || HiddenDim <= 0 || MlpDim <= 0 || OutputDim <= 0)
            throw new ArgumentException("ResidualEncoderConfig: sizes must be positive.");
        if (ImageSize % PatchSize != 0)
            throw new ArgumentException($"ResidualEncoderConfig: ImageSize {ImageSize} is not a multiple of PatchSize {PatchSize} (torchvision requires it).");
        if (HiddenDim % NumHeads != 0)
            throw new ArgumentException($"ResidualEncoderConfig: HiddenDim {HiddenDim} is not a multiple of NumHeads {NumHeads}.");
    }
}

/// <summary>
/// SVG's residual encoder (official <c>create_small_vit_s</c> + its <c>forward_custom</c>): a torchvision ViT-S-like
/// encoder whose patch tokens are projected to a few channels that capture what the frozen DINOv3 features miss.
/// <code>
///   t = [class_token ; conv_proj(x) flattened]            [B, 1 + N, 384]
///   t = encoder(t)                                        (+ pos_embedding, pre-norm blocks, final LayerNorm)
///   h = heads(t[:, 1:])  = Linear(384→384) → GELU → Linear(384→out)      [B, N, out]
///   return hᵀ                                             [B, out, N]
/// </code>
/// Keys are torchvision's: <c>conv_proj.*</c>, <c>class_token</c>, <c>encoder.pos_embedding</c>,
/// <c>encoder.layers.encoder_layer_{i}.*</c>, <c>encoder.ln.*</c>, <c>heads.0.*</c>, <c>heads.2.*</c>.
/// Input: ImageNet-normalised images of exactly <see cref="ResidualEncoderConfig.ImageSize"/> squared.
/// </summary>
public sealed class ResidualEncoder : nn.Module<Tensor, Tensor>
{
    readonly Conv2d conv_proj;
    Parameter class_token;
    readonly VitEncoder encoder;
    readonly Sequential heads;

    /// <summary>The sizes.</summary>
    public ResidualEncoderConfig Config { get; }

    /// <summary>Builds the encoder with torchvision's initialisation (conv_proj truncated normal, zero class token, …;
    /// the replaced heads keep PyTorch's Linear default).</summary>
    public ResidualEncoder(ResidualEncoderConfig config) : base(nameof(ResidualEncoder))
    {
        TorchRuntime.EnsureInitialized();
        config.Validate();
        Config = config;
        conv_proj = nn.Conv2d(3, config.HiddenDim, kernel_size: config.PatchSize, stride: config.PatchSize);
        class_token = nn.Parameter(zeros(1, 1, config.HiddenDim));
        encoder = new VitEncoder(config);
        heads = nn.Sequential(
            nn.Linear(config.HiddenDim, config.HiddenDim),
            nn.GELU(),
            nn.Linear(config.HiddenDim, config.OutputDim));
        RegisterComponents();
        InitConvProj();
    }

    /// <summary>torchvision: conv_proj weight ~ truncated N(0, 1/fan_in), bias 0.</summary>
    void InitConvProj()
    {
        using var _ = no_grad();
        long fanIn = 3L * Config.PatchSize * Config.PatchSize;
        nn.init.trunc_normal_(conv_proj.weight!, std: Math.Sqrt(1.0 / fanIn));
        conv_proj.bias?.zero_();
    }

    /// <summary>ImageNet-normalised [B, 3, S, S] → per-patch residual features [B, out, N], N = (S / p)².</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var tokens = ProcessInput(x);                                   // [B, N, D]
        long B = tokens.shape[0];
        var t = cat(new[] { class_token.expand(B, -1, -1), tokens }, dim: 1);
        t = encoder.forward(t);
        t = t.narrow(1, 1, t.shape[1] - 1);                             // drop the class token
        var h = heads.forward(t);                                       // [B, N, out]
        return scope.MoveToOuter(h.transpose(1, 2));
    }

    /// <summary>The residual features as a grid [B, out, S/p, S/p].</summary>
    public Tensor EncodeGrid(Tensor x)
    {
        using var h = forward(x);
        return h.reshape(h.shape[0], h.shape[1], Config.GridSize, Config.GridSize);
    }

    /// <summary>torchvision <c>_process_input</c>: checks the size, conv_proj, [B, D, n_h, n_w] → [B, n_h·n_w, D].</summary>
    Tensor ProcessInput(Tensor x)
    {
        if (x.dim() != 4 || x.shape[1] != 3)
            throw new ArgumentException($"The residual encoder expects [B, 3, H, W] images; got [{string.Join(", ", x.shape)}].");
        if (x.shape[2] != Config.ImageSize || x.shape[3] != Config.ImageSize)
            throw new ArgumentException(
                $"The residual encoder only accepts {Config.ImageSize}×{Config.ImageSize} inputs (torchvision asserts the size); got {x.shape[2]}×{x.shape[3]}.");
        var p = conv_proj.forward(x);
        return p.reshape(p.shape[0], Config.HiddenDim, -1).permute(0, 2, 1);
    }
}
