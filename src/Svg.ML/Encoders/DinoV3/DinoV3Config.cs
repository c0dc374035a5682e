using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>The feed-forward layer of a DINOv3 block (<c>ffn_layer</c> in the official code).</summary>
public enum DinoV3FfnLayer
{
    /// <summary><c>"mlp"</c>: fc1 → GELU (exact) → fc2 (keys <c>mlp.fc1</c>, <c>mlp.fc2</c>).</summary>
    Mlp,

    /// <summary><c>"swiglu"</c> (and <c>"swiglu32/64/128"</c> with another <see cref="DinoV3Config.SwiGluAlignTo"/>):
    /// w3(silu(w1 x) ⊙ w2 x) (keys <c>mlp.w1</c>, <c>mlp.w2</c>, <c>mlp.w3</c>).</summary>
    SwiGlu,
}

/// <summary>How RoPE normalises patch coordinates to [-1, 1] (<c>pos_embed_rope_normalize_coords</c>).</summary>
public enum RopeCoordinateNormalization
{
    /// <summary>Both axes divided by min(H, W).</summary>
    Min,

    /// <summary>Both axes divided by max(H, W).</summary>
    Max,

    /// <summary>Each axis divided by its own length (every released DINOv3 ViT).</summary>
    Separate,
}

/// <summary>
/// Every size and switch of a DINOv3 vision transformer (facebookresearch/dinov3
/// <c>models/vision_transformer.py::DinoVisionTransformer</c>). The defaults are the settings shared by every released
/// DINOv3 ViT in <c>dinov3/hub/backbones.py</c> (patch 16, RoPE base 100 with "separate" coordinates, rescale 2 in
/// training, fp32 RoPE, LayerScale 1e-5, <c>layernormbf16</c> = LayerNorm eps 1e-5, 4 storage tokens, masked k-bias,
/// all biases); the presets add the widths. Note that the raw class defaults differ (RoPE dtype bf16, eps 1e-6,
/// no storage tokens, no LayerScale, MLP FFN).
/// </summary>
public sealed record DinoV3Config
{
    /// <summary>A display name for reports, e.g. "DINOv3 ViT-S+/16".</summary>
    public string Name { get; init; } = "DINOv3 ViT";

    /// <summary><c>img_size</c>: only recorded by the patch embedding (any input size works).</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary><c>patch_size</c>: the stride and kernel of the patch embedding convolution.</summary>
    public int PatchSize { get; init; } = 16;

    /// <summary><c>in_chans</c>.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary><c>embed_dim</c>: token width (the number of feature channels).</summary>
    public int EmbedDim { get; init; } = 768;

    /// <summary><c>depth</c>: number of transformer blocks.</summary>
    public int Depth { get; init; } = 12;

    /// <summary><c>num_heads</c>.</summary>
    public int NumHeads { get; init; } = 12;

    /// <summary><c>ffn_ratio</c>: the FFN hidden width before the SwiGLU reduction is int(EmbedDim · FfnRatio).</summary>
    public double FfnRatio { get; init; } = 4.0;

    /// <summary><c>ffn_layer</c>.</summary>
    public DinoV3FfnLayer FfnLayer { get; init; } = DinoV3FfnLayer.Mlp;

    /// <summary>SwiGLU hidden width alignment (<c>align_to</c>: 8 for "swiglu", 64 for "swiglu64").</summary>
    public int SwiGluAlignTo { get; init; } = 8;

    /// <summary><c>qkv_bias</c>.</summary>
    public bool QkvBias { get; init; } = true;

    /// <summary><c>proj_bias</c>: bias of the attention output projection.</summary>
    public bool ProjBias { get; init; } = true;

    /// <summary><c>ffn_bias</c>.</summary>
    public bool FfnBias { get; init; } = true;

    /// <summary><c>mask_k_bias</c>: the qkv bias is multiplied by the <c>bias_mask</c> buffer (1 for q and v, 0 for k).</summary>
    public bool MaskKBias { get; init; } = true;

    /// <summary><c>layerscale_init</c>: LayerScale gamma init; null (or 0) means no LayerScale (identity, no keys).</summary>
    public double? LayerScaleInit { get; init; } = 1e-5;

    /// <summary>LayerNorm eps: 1e-5 for <c>norm_layer="layernormbf16"</c> (every release), 1e-6 for <c>"layernorm"</c>.</summary>
    public double NormEps { get; init; } = 1e-5;

    /// <summary><c>n_storage_tokens</c>: register tokens between the class token and the patch tokens.</summary>
    public int NStorageTokens { get; init; } = 4;

    /// <summary><c>pos_embed_rope_base</c>: periods = base^(2i / (head_dim/2)), i &lt; head_dim/4. Null when
    /// <see cref="RopeMinPeriod"/> and <see cref="RopeMaxPeriod"/> are given instead.</summary>
    public double? RopeBase { get; init; } = 100.0;

    /// <summary><c>pos_embed_rope_min_period</c> (alternative parametrisation, with <see cref="RopeMaxPeriod"/>).</summary>
    public double? RopeMinPeriod { get; init; }

    /// <summary><c>pos_embed_rope_max_period</c>.</summary>
    public double? RopeMaxPeriod { get; init; }

    /// <summary><c>pos_embed_rope_normalize_coords</c>.</summary>
    public RopeCoordinateNormalization RopeNormalizeCoords { get; init; } = RopeCoordinateNormalization.Separate;

    /// <summary><c>pos_embed_rope_shift_coords</c> (training only).</summary>
    public double? RopeShiftCoords { get; init; }

    /// <summary><c>pos_embed_rope_jitter_coords</c> (training only).</summary>
    public double? RopeJitterCoords { get; init; }

    /// <summary><c>pos_embed_rope_rescale_coords</c> (training only: coordinates × a log-uniform factor in [1/r, r]).</summary>
    public double? RopeRescaleCoords { get; init; } = 2.0;

    /// <summary><c>pos_embed_rope_dtype</c>: dtype of the periods buffer and of the rotation (fp32 in the hub
    /// factory; the raw class default is bf16).</summary>
    public ScalarType RopeDtype { get; init; } = ScalarType.Float32;

    /// <summary><c>drop_path_rate</c>: stochastic depth in training. Only 0 is supported (every release).</summary>
    public double DropPathRate { get; init; }

    /// <summary><c>untie_cls_and_patch_norms</c>: a separate <c>cls_norm</c> for the class and storage tokens.</summary>
    public bool UntieClsAndPatchNorms { get; init; }

    /// <summary><c>untie_global_and_local_cls_norm</c>: adds <c>local_cls_norm</c>, used only for local crops in
    /// DINO training (never in inference); ViT-L/16 SAT-493M and ViT-7B/16 have it.</summary>
    public bool UntieGlobalAndLocalClsNorm { get; init; }

    /// <summary>Channels per head: EmbedDim / NumHeads.</summary>
    public int HeadDim => EmbedDim / NumHeads;

    /// <summary>Tokens before the patch tokens: the class token and the storage tokens.</summary>
    public int PrefixTokens => 1 + NStorageTokens;

    /// <summary>The FFN hidden width given to the FFN layer: int(EmbedDim · FfnRatio) (Python <c>int()</c> truncation).</summary>
    public int FfnHiddenDim => (int)Math.Truncate(EmbedDim * FfnRatio);

    /// <summary>SwiGLU hidden width: d + (-d mod align) with d = int(FfnHiddenDim · 2 / 3) (384·6 → 1536).</summary>
    public int SwiGluHiddenDim
    {
        get
        {
            int d = (int)Math.Truncate(FfnHiddenDim * 2 / 3.0);
            return d + ((SwiGluAlignTo - d % SwiGluAlignTo) % SwiGluAlignTo);
        }
    }

    /// <summary>Checks the sizes; throws <see cref="ArgumentException"/> naming the first inconsistency.</summary>
    public void Validate()
    {
        if (PatchSize <= 0 || InChannels <= 0 || EmbedDim <= 0 || Depth < 0 || NumHeads <= 0)
            throw new ArgumentException($"{Name}: sizes must be positive.");
        if (EmbedDim % (4 * NumHeads) != 0)
            throw new ArgumentException($"{Name}: EmbedDim ({EmbedDim}) must be a multiple of 4 × NumHeads ({4 * NumHeads}) for the axial RoPE.");
        if (NStorageTokens < 0) throw new ArgumentException($"{Name}: NStorageTokens must be ≥ 0.");
        bool bothPeriods = RopeMinPeriod is not null && RopeMaxPeriod is not null;
        if ((RopeBase is null && !bothPeriods) || (RopeBase is not null && bothPeriods))
            throw new ArgumentException($"{Name}: give either RopeBase or both RopeMinPeriod and RopeMaxPeriod.");
        if (DropPathRate != 0)
            throw new ArgumentException($"{Name}: DropPathRate {DropPathRate} is not supported (stochastic depth is training-only; every release uses 0).");
        if (FfnLayer == DinoV3FfnLayer.SwiGlu && SwiGluAlignTo <= 0)
            throw new ArgumentException($"{Name}: SwiGluAlignTo must be positive.");
        if (RopeDtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16 or ScalarType.Float64))
            throw new ArgumentException($"{Name}: RopeDtype must be a floating type.");
    }

    // Presets: dinov3/hub/backbones.py (facebookresearch/dinov3), functions dinov3_vits16, dinov3_vits16plus,
    // dinov3_vitb16, dinov3_vitl16. Every one passes img_size 224, patch 16, in_chans 3, pos_embed_rope_base 100,
    // normalize_coords "separate", rescale_coords 2, rope dtype "fp32", qkv/ffn/proj bias True, drop_path 0,
    // layerscale_init 1e-5, norm_layer "layernormbf16", n_storage_tokens 4, mask_k_bias True (= the defaults above).

    /// <summary>ViT-S/16 (<c>dinov3_vits16</c>): 384 wide, 12 blocks, 6 heads, MLP FFN ratio 4. 21.6M parameters.</summary>
    public static DinoV3Config ViTS16 => new()
    {
        Name = "DINOv3 ViT-S/16", EmbedDim = 384, Depth = 12, NumHeads = 6, FfnRatio = 4, FfnLayer = DinoV3FfnLayer.Mlp,
    };

    /// <summary>ViT-S+/16 (<c>dinov3_vits16plus</c>, SVG's frozen encoder): 384 wide, 12 blocks, 6 heads, SwiGLU FFN
    /// ratio 6 (hidden 1536). 28,697,472 parameters.</summary>
    public static DinoV3Config ViTSPlus16 => new()
    {
        Name = "DINOv3 ViT-S+/16", EmbedDim = 384, Depth = 12, NumHeads = 6, FfnRatio = 6, FfnLayer = DinoV3FfnLayer.SwiGlu,
    };

    /// <summary>ViT-B/16 (<c>dinov3_vitb16</c>): 768 wide, 12 blocks, 12 heads, MLP FFN ratio 4.</summary>
    public static DinoV3Config ViTB16 => new()
    {
        Name = "DINOv3 ViT-B/16", EmbedDim = 768, Depth = 12, NumHeads = 12, FfnRatio = 4, FfnLayer = DinoV3FfnLayer.Mlp,
    };

    /// <summary>ViT-L/16 (<c>dinov3_vitl16</c>, LVD-1689M weights): 1024 wide, 24 blocks, 16 heads, MLP FFN ratio 4.
    /// (The SAT-493M weights additionally need <see cref="UntieGlobalAndLocalClsNorm"/> = true.)</summary>
    public static DinoV3Config ViTL16 => new()
    {
        Name = "DINOv3 ViT-L/16", EmbedDim = 1024, Depth = 24, NumHeads = 16, FfnRatio = 4, FfnLayer = DinoV3FfnLayer.Mlp,
    };
}
