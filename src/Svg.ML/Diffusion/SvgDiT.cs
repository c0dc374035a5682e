using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>
/// The SVG diffusion transformer (<c>models/models_SVG.py::DiT</c>): predicts the flow velocity of latent tokens.
/// <code>
/// h = ln1(x) + pos_embed                          x [B, T, C_in] → [B, T, D]   (T = GridSize², fixed 2-D sin-cos)
/// c = t_embedder(t) + y_embedder(y)               t ∈ [0, 1] (0 = noise, 1 = data), y ∈ [0, num_classes]
/// h = blocks[i](h, c)  for i = 0 … depth-1        adaLN-Zero DiT blocks with QK-norm
/// out = final_layer(h, c)                         [B, T, C_out], C_out = 2·C_in with learn_sigma
/// </code>
/// Parameter names equal the official <c>state_dict</c> keys (the released <c>{"ema": sd}</c> has no prefix);
/// <c>pos_embed</c> is a frozen parameter (requires_grad = false), as in the official model.
/// Unlike the official (fixed 16×16), <see cref="SvgDiTConfig.GridSize"/> sets any square grid.
/// </summary>
public sealed class SvgDiT : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>The configuration this model was built from.</summary>
    public SvgDiTConfig Config { get; }

#pragma warning disable IDE1006
    readonly Linear ln1;
    readonly Parameter pos_embed;
    readonly TimestepEmbedder t_embedder;
    readonly LabelEmbedder y_embedder;
    readonly ModuleList<DiTBlock> blocks;
    readonly DiTFinalLayer final_layer;
#pragma warning restore IDE1006

    /// <summary>
    /// Builds the model with the official initialisation (<see cref="InitializeWeights"/>): xavier-uniform linear
    /// weights, zero biases, N(0, 0.02) label table and timestep MLP, zero adaLN and output layers — a fresh model
    /// outputs exactly 0.
    /// </summary>
    /// <param name="config">Model configuration (presets: <see cref="SvgDiTConfig.XL"/> etc.).</param>
    /// <param name="device">Where to create the parameters (default CPU); the <c>meta</c> device builds without memory.</param>
    public SvgDiT(SvgDiTConfig config, Device? device = null) : base(nameof(SvgDiT))
    {
        TorchRuntime.EnsureInitialized();
        config.Validate();
        Config = config;
        int h = config.HiddenSize;

        t_embedder = new TimestepEmbedder(h, device: device);
        y_embedder = new LabelEmbedder(config.NumClasses, h, config.ClassDropoutProb, device);
        using (Tensor pe = SinCosPositionEmbedding.Create2D(h, config.GridSize))
            pos_embed = new Parameter(pe.unsqueeze(0).to(device ?? CPU), requires_grad: false);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Depth).Select(_ => new DiTBlock(config, device)).ToArray());
        ln1 = nn.Linear(config.InChannels, h, hasBias: true, device: device);
        final_layer = new DiTFinalLayer(h, config.PatchSize * config.PatchSize * config.OutChannels, device);
        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>The timestep embedder (<c>t_embedder</c>).</summary>
    public TimestepEmbedder TimeEmbedder => t_embedder;

    /// <summary>The label embedder (<c>y_embedder</c>).</summary>
    public LabelEmbedder LabelEmbedder => y_embedder;

    /// <summary>The frozen position embedding <c>[1, T, D]</c> (<c>pos_embed</c>).</summary>
    public Tensor PositionEmbedding => pos_embed;

    /// <summary>The official <c>initialize_weights</c> (uses the global torch RNG; seed with <c>torch.manual_seed</c>).</summary>
    public void InitializeWeights()
    {
        using var _ = no_grad();
        foreach (var module in modules())
        {
            if (module is Linear linear)
            {
                nn.init.xavier_uniform_(linear.weight!);
                if (linear.bias is not null) nn.init.zeros_(linear.bias);
            }
            else if (module is LayerNorm { weight: not null } norm)   // QK-norm: PyTorch's default ones / zeros
            {
                nn.init.ones_(norm.weight);
                if (norm.bias is not null) nn.init.zeros_(norm.bias);
            }
        }
        using (Tensor pe = SinCosPositionEmbedding.Create2D(Config.HiddenSize, Config.GridSize))
            pos_embed.copy_(pe.unsqueeze(0));
        nn.init.normal_(y_embedder.Table, std: 0.02);
        var (tFirst, tSecond) = t_embedder.Layers;
        nn.init.normal_(tFirst.weight!, std: 0.02);
        nn.init.normal_(tSecond.weight!, std: 0.02);
        foreach (var block in blocks)
        {
            nn.init.zeros_(block.Modulation.weight!);
            nn.init.zeros_(block.Modulation.bias!);
        }
        var (output, modulation) = final_layer.Layers;
        nn.init.zeros_(modulation.weight!);
        nn.init.zeros_(modulation.bias!);
        nn.init.zeros_(output.weight!);
        nn.init.zeros_(output.bias!);
    }

    /// <summary>
    /// Velocity prediction for tokens <paramref name="x"/> <c>[B, T, C_in]</c> at times <paramref name="t"/> <c>[B]</c>
    /// with labels <paramref name="y"/> <c>[B]</c> (int64; <c>num_classes</c> = unconditional) → <c>[B, T, C_out]</c>.
    /// In training mode labels are dropped with probability <c>class_dropout_prob</c>.
    /// </summary>
    public override Tensor forward(Tensor x, Tensor t, Tensor y) => forward(x, t, y, null);

    /// <summary>
    /// As <see cref="forward(Tensor, Tensor, Tensor)"/>; <paramref name="forceDropIds"/> <c>[B]</c> (1 = replace the
    /// label by the null class) replaces the random label dropout, in training and evaluation alike (official semantics).
    /// <paramref name="x"/> is cast to the weights' dtype and the output has that dtype; <paramref name="t"/> stays as
    /// given (its sinusoidal features are computed in float32, see <see cref="TimestepEmbedder"/>).
    /// </summary>
    public Tensor forward(Tensor x, Tensor t, Tensor y, Tensor? forceDropIds)
    {
        if (x.dim() != 3 || x.shape[1] != Config.NumTokens || x.shape[2] != Config.InChannels)
            throw new ArgumentException(
                $"SvgDiT expects x [B, {Config.NumTokens}, {Config.InChannels}] (grid {Config.GridSize}×{Config.GridSize}); got [{string.Join(", ", x.shape)}].");
        using var scope = NewDisposeScope();
        x = x.to(pos_embed.dtype);              // the model's compute dtype (bf16 for a bf16 compute copy; else a no-op)
        Tensor h = ln1.call(x) + pos_embed;
        Tensor c = t_embedder.call(t) + y_embedder.Embed(y, training, forceDropIds);
        foreach (var block in blocks) h = block.call(h, c);
        return final_layer.call(h, c).MoveToOuterDisposeScope();
    }
}
