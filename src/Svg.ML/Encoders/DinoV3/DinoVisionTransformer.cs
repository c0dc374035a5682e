using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// The outputs of <see cref="DinoVisionTransformer.ForwardFeatures"/> (the official <c>forward_features</c> dict).
/// </summary>
/// <param name="XNormClsToken"><c>x_norm_clstoken</c> [B, D]: the normed class token.</param>
/// <param name="XStorageTokens"><c>x_storage_tokens</c> [B, n_storage, D]: the normed storage (register) tokens.</param>
/// <param name="XNormPatchTokens"><c>x_norm_patchtokens</c> [B, h·w, D]: the normed patch tokens, row-major.</param>
/// <param name="XPrenorm"><c>x_prenorm</c> [B, 1 + n_storage + h·w, D]: all tokens before the final norm.</param>
/// <param name="GridHeight">h = ⌊H / patch⌋.</param>
/// <param name="GridWidth">w = ⌊W / patch⌋.</param>
public sealed record DinoV3Features(
    Tensor XNormClsToken, Tensor XStorageTokens, Tensor XNormPatchTokens, Tensor XPrenorm, int GridHeight, int GridWidth)
    : IDisposable
{
    /// <summary>The patch tokens as a feature grid [B, D, h, w].</summary>
    public Tensor PatchGrid() =>
        XNormPatchTokens.reshape(XNormPatchTokens.shape[0], GridHeight, GridWidth, -1).permute(0, 3, 1, 2).contiguous();

    /// <summary>Disposes the four tensors.</summary>
    public void Dispose()
    {
        XNormClsToken.Dispose();
        XStorageTokens.Dispose();
        XNormPatchTokens.Dispose();
        XPrenorm.Dispose();
    }
}

/// <summary>
/// The DINOv3 vision transformer (facebookresearch/dinov3 <c>models/vision_transformer.py::DinoVisionTransformer</c>),
/// inference path. Tokens are [cls, storage₁..ₙ, patches (row-major)]; there is no absolute position embedding, the
/// positions enter through RoPE in every attention:
/// <code>
///   x₀ = [cls ; storage ; PatchEmbed(image)]
///   x_{l+1} = Block_l(x_l, RoPE(h, w))            l = 0 .. depth−1
///   outputs = LayerNorm(x_depth) split into class / storage / patch tokens
/// </code>
/// State-dict keys are exactly the official ones: <c>cls_token</c>, <c>storage_tokens</c>, <c>mask_token</c>,
/// <c>patch_embed.proj.*</c>, <c>rope_embed.periods</c>, <c>blocks.N.*</c>, <c>norm.*</c> (+ <c>cls_norm.*</c>,
/// <c>local_cls_norm.*</c> when untied), so released <c>.pth</c> weights (converted to safetensors) load strictly.
/// As a <see cref="IFrozenEncoder"/> it takes ImageNet-normalised images and yields the normed patch tokens as a
/// [B, D, H/16, W/16] grid. Inputs of any size work; sizes that are not multiples of the patch size are floored
/// (as in the official code: the patch convolution drops the remainder).
/// </summary>
public sealed class DinoVisionTransformer : nn.Module<Tensor, Tensor>, IFrozenEncoder
{
    // Parameters and buffers: the field names are the official state_dict keys.
    Parameter cls_token;
    Parameter? storage_tokens;
    Parameter mask_token;
    readonly PatchEmbed patch_embed;
    readonly RopePositionEmbedding rope_embed;
    readonly ModuleList<SelfAttentionBlock> blocks;
    readonly LayerNorm norm;
    readonly LayerNorm? cls_norm;
    readonly LayerNorm? local_cls_norm;

    readonly int _defaultImageSize;

    /// <summary>The architecture.</summary>
    public DinoV3Config Config { get; }

    /// <summary>
    /// Builds the model and initialises it as the official <c>init_weights()</c> does (what the hub factory runs with
    /// <c>pretrained=False</c>); load released weights with <see cref="Checkpoints.StateDict.Load"/>.
    /// </summary>
    /// <param name="config">The architecture, e.g. <see cref="DinoV3Config.ViTSPlus16"/>.</param>
    /// <param name="defaultImageSize">The square working resolution reported as <see cref="IFrozenEncoder.DefaultImageSize"/>
    /// (256 in SVG; the config's <c>img_size</c> 224 only records the pretraining size).</param>
    public DinoVisionTransformer(DinoV3Config config, int defaultImageSize = 256) : base(nameof(DinoVisionTransformer))
    {
        TorchRuntime.EnsureInitialized();
        config.Validate();
        Config = config;
        _defaultImageSize = defaultImageSize;
        int dim = config.EmbedDim;

        patch_embed = new PatchEmbed(config.InChannels, dim, config.PatchSize);
        cls_token = nn.Parameter(zeros(1, 1, dim));
        if (config.NStorageTokens > 0) storage_tokens = nn.Parameter(zeros(1, config.NStorageTokens, dim));
        rope_embed = new RopePositionEmbedding(config);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(_ => new SelfAttentionBlock(config)).ToArray());
        norm = nn.LayerNorm(dim, eps: config.NormEps);
        if (config.UntieClsAndPatchNorms) cls_norm = nn.LayerNorm(dim, eps: config.NormEps);
        if (config.UntieGlobalAndLocalClsNorm) local_cls_norm = nn.LayerNorm(dim, eps: config.NormEps);
        mask_token = nn.Parameter(zeros(1, dim));
        RegisterComponents();
        InitWeights();
    }

    /// <summary>
    /// The official <c>init_weights()</c>: RoPE periods recomputed; cls and storage tokens ~ N(0, 0.02²); mask token 0;
    /// every linear weight ~ truncated N(0, 0.02²) with zero bias and the k-bias mask pattern; LayerNorm (1, 0);
    /// LayerScale γ = init; patch embedding U(±1/√(C·p²)).
    /// </summary>
    public void InitWeights()
    {
        using var _ = no_grad();
        using (var periods = RopePositionEmbedding.DefaultPeriods(Config)) rope_embed.Periods.copy_(periods);
        nn.init.normal_(cls_token, std: 0.02);
        if (storage_tokens is not null) nn.init.normal_(storage_tokens, std: 0.02);
        mask_token.zero_();
        foreach (var module in modules())
        {
            switch (module)
            {
                case Linear linear:
                    nn.init.trunc_normal_(linear.weight!, std: 0.02);
                    linear.bias?.zero_();
                    break;
                case LinearKMaskedBias masked:
                    nn.init.trunc_normal_(masked.Weight, std: 0.02);
                    masked.Bias?.zero_();
                    masked.ResetMask();
                    break;
                case LayerNorm layerNorm:
                    layerNorm.weight?.fill_(1);
                    layerNorm.bias?.zero_();
                    break;
                case LayerScale layerScale:
                    layerScale.ResetParameters();
                    break;
                case PatchEmbed patchEmbed:
                    patchEmbed.ResetParameters();
                    break;
            }
        }
    }

    /// <summary>The RoPE module (<c>rope_embed</c>): <c>forward(H, W)</c> → (sin, cos), each [H·W, head_dim].</summary>
    public RopePositionEmbedding RopeEmbed => rope_embed;

    /// <summary>Number of transformer blocks.</summary>
    public int Depth => blocks.Count;

    /// <summary>The official <c>forward(x)</c> (inference): the normed class token [B, D] (the head is the identity).</summary>
    public override Tensor forward(Tensor x)
    {
        using var features = ForwardFeatures(x);
        return features.XNormClsToken.clone();
    }

    /// <summary>
    /// The official <c>forward_features(x, masks)</c>: [B, C_in, H, W] → normed class, storage and patch tokens and the
    /// pre-norm tokens. <paramref name="masks"/> (bool [B, h·w], optional) replaces masked patch tokens by
    /// <c>mask_token</c> before the blocks.
    /// </summary>
    public DinoV3Features ForwardFeatures(Tensor x, Tensor? masks = null)
    {
        using var scope = NewDisposeScope();
        var (tokens, h, w) = PrepareTokensWithMasks(x, masks);
        foreach (var block in blocks)
        {
            var (sin, cos) = rope_embed.forward(h, w);      // recomputed per block as the official code does
            tokens = block.forward(tokens, sin, cos);
        }

        int prefix = Config.PrefixTokens;
        long n = tokens.shape[1];
        Tensor clsAndStorage, patches;
        if (Config.UntieClsAndPatchNorms || Config.UntieGlobalAndLocalClsNorm)
        {
            // local_cls_norm is applied only to local crops in DINO training, never here.
            clsAndStorage = (cls_norm ?? norm).forward(tokens.narrow(1, 0, prefix));
            patches = norm.forward(tokens.narrow(1, prefix, n - prefix));
        }
        else
        {
            var normed = norm.forward(tokens);
            clsAndStorage = normed.narrow(1, 0, prefix);
            patches = normed.narrow(1, prefix, n - prefix);
        }
        var result = new DinoV3Features(
            XNormClsToken: clsAndStorage.select(1, 0),
            XStorageTokens: clsAndStorage.narrow(1, 1, Config.NStorageTokens),
            XNormPatchTokens: patches,
            XPrenorm: tokens,
            GridHeight: (int)h,
            GridWidth: (int)w);
        scope.MoveToOuter(result.XNormClsToken, result.XStorageTokens, result.XNormPatchTokens);
        scope.MoveToOuter(result.XPrenorm);
        return result;
    }

    /// <summary>
    /// The official <c>get_intermediate_layers(x, n=<paramref name="lastBlocks"/>, reshape, norm)</c>: the patch
    /// tokens after each of the last <paramref name="lastBlocks"/> blocks, in block order; [B, h·w, D] or, with
    /// <paramref name="reshape"/>, [B, D, h, w]. With <paramref name="norm"/> the final norm is applied (then the last
    /// block's output equals <see cref="DinoV3Features.XNormPatchTokens"/>).
    /// </summary>
    public Tensor[] GetIntermediateLayers(Tensor x, int lastBlocks = 1, bool reshape = false, bool norm = true)
    {
        if (lastBlocks < 1 || lastBlocks > Depth)
            throw new ArgumentOutOfRangeException(nameof(lastBlocks), $"n = {lastBlocks} must be in [1, {Depth}].");
        return GetIntermediateLayers(x, Enumerable.Range(Depth - lastBlocks, lastBlocks).ToArray(), reshape, norm);
    }

    /// <summary>
    /// <c>get_intermediate_layers</c> with an explicit list of block indices (0-based): the patch tokens after each of
    /// those blocks, in block order (as the official code returns them).
    /// </summary>
    public Tensor[] GetIntermediateLayers(Tensor x, IReadOnlyCollection<int> blockIndices, bool reshape = false, bool norm = true)
    {
        var take = new HashSet<int>(blockIndices);
        if (take.Count != blockIndices.Count || take.Any(i => i < 0 || i >= Depth))
            throw new ArgumentException($"Block indices must be distinct and in [0, {Depth}); got [{string.Join(", ", blockIndices)}].", nameof(blockIndices));

        using var scope = NewDisposeScope();
        var (tokens, h, w) = PrepareTokensWithMasks(x, null);
        var outputs = new List<Tensor>();
        for (int i = 0; i < blocks.Count; i++)
        {
            var (sin, cos) = rope_embed.forward(h, w);
            tokens = blocks[i].forward(tokens, sin, cos);
            if (take.Contains(i)) outputs.Add(tokens);
        }

        int prefix = Config.PrefixTokens;
        var results = new Tensor[outputs.Count];
        for (int j = 0; j < outputs.Count; j++)
        {
            var o = outputs[j];
            long n = o.shape[1];
            if (norm)
                o = Config.UntieClsAndPatchNorms
                    ? cat(new[] { cls_norm!.forward(o.narrow(1, 0, prefix)), this.norm.forward(o.narrow(1, prefix, n - prefix)) }, dim: 1)
                    : this.norm.forward(o);
            var patchTokens = o.narrow(1, prefix, n - prefix);
            if (reshape)
            {
                // The official code uses the input size: (H // patch, W // patch).
                long B = x.shape[0], gh = x.shape[2] / Config.PatchSize, gw = x.shape[3] / Config.PatchSize;
                patchTokens = patchTokens.reshape(B, gh, gw, -1).permute(0, 3, 1, 2).contiguous();
            }
            results[j] = patchTokens;
        }
        scope.MoveToOuter(results);
        return results;
    }

    /// <summary>
    /// The official <c>prepare_tokens_with_masks</c>: patch embedding, optional masking, then
    /// [cls (+ 0·mask_token) ; storage ; patches].
    /// </summary>
    (Tensor Tokens, long H, long W) PrepareTokensWithMasks(Tensor x, Tensor? masks)
    {
        if (x.dim() != 4 || x.shape[1] != Config.InChannels || x.shape[2] < Config.PatchSize || x.shape[3] < Config.PatchSize)
            throw new ArgumentException(
                $"{Name} expects images [B, {Config.InChannels}, H, W] with H, W ≥ {Config.PatchSize}; got [{string.Join(", ", x.shape)}].", nameof(x));
        var patches = patch_embed.forward(x);          // [B, h, w, D]
        long B = patches.shape[0], h = patches.shape[1], w = patches.shape[2], D = patches.shape[3];
        var tokens = patches.flatten(1, 2);             // [B, h·w, D]

        Tensor cls;
        if (masks is not null)
        {
            tokens = where(masks.unsqueeze(-1), mask_token.to(tokens.dtype).unsqueeze(0), tokens);
            cls = cls_token;
        }
        else
        {
            cls = cls_token + 0 * mask_token;           // as in the official code (keeps mask_token in the graph)
        }
        var storage = storage_tokens ?? (Tensor)empty(1, 0, D, dtype: cls.dtype, device: cls.device);
        tokens = cat(new[] { cls.expand(B, -1, -1), storage.expand(B, -1, -1), tokens }, dim: 1);
        return (tokens, h, w);
    }

    // ---- IFrozenEncoder ----

    /// <inheritdoc/>
    public string Name => Config.Name;

    /// <inheritdoc/>
    public int Channels => Config.EmbedDim;

    /// <inheritdoc/>
    public int PatchSize => Config.PatchSize;

    /// <inheritdoc/>
    public int DefaultImageSize => _defaultImageSize;

    /// <inheritdoc/>
    public nn.Module Module => this;

    /// <summary>ImageNet mean/std normalisation of RGB in [0, 1] (the input DINOv3 was trained on).</summary>
    public Tensor Preprocess(Tensor rgb01) => ImageNetNormalization.Normalize(rgb01);

    /// <summary>ImageNet-normalised images [B, 3, H, W] → normed patch tokens as a grid [B, D, ⌊H/p⌋, ⌊W/p⌋].</summary>
    public Tensor EncodeGrid(Tensor input)
    {
        using var features = ForwardFeatures(input);
        return features.PatchGrid();
    }
}
