using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>
/// Flow time → vector (<c>TimestepEmbedder</c>): sinusoidal features of the unscaled t ∈ [0, 1], then an MLP.
/// <code>
/// freqs_i = exp(-ln(max_period) · i / half),  i = 0 … half-1,   half = frequency_embedding_size / 2
/// t_freq  = [cos(t·freqs), sin(t·freqs)]          (cos first, as the official)
/// t_emb   = mlp.2(SiLU(mlp.0(t_freq)))
/// </code>
/// </summary>
public sealed class TimestepEmbedder : nn.Module<Tensor, Tensor>
{
    /// <summary>Sinusoidal feature width of the official model.</summary>
    public const int DefaultFrequencyEmbeddingSize = 256;

    /// <summary>Sinusoidal feature width.</summary>
    public int FrequencyEmbeddingSize { get; }

#pragma warning disable IDE1006
    readonly Sequential mlp;
#pragma warning restore IDE1006

    /// <summary>Creates the embedder: <c>Linear(freq, hidden) → SiLU → Linear(hidden, hidden)</c>.</summary>
    public TimestepEmbedder(int hiddenSize, int frequencyEmbeddingSize = DefaultFrequencyEmbeddingSize, Device? device = null)
        : base(nameof(TimestepEmbedder))
    {
        FrequencyEmbeddingSize = frequencyEmbeddingSize;
        mlp = nn.Sequential(
            ("0", nn.Linear(frequencyEmbeddingSize, hiddenSize, hasBias: true, device: device)),
            ("1", nn.SiLU()),
            ("2", nn.Linear(hiddenSize, hiddenSize, hasBias: true, device: device)));
        RegisterComponents();
    }

    /// <summary>The two linear layers (<c>mlp.0</c>, <c>mlp.2</c>), for initialisation.</summary>
    internal (Linear First, Linear Second) Layers => ((Linear)mlp[0], (Linear)mlp[2]);

    /// <summary>Sinusoidal features <c>[N, dim]</c> of <paramref name="t"/> <c>[N]</c> (fractional values allowed).</summary>
    public static Tensor TimestepEmbedding(Tensor t, int dim, double maxPeriod = 10000)
    {
        using var scope = NewDisposeScope();
        int half = dim / 2;
        Tensor freqs = torch.exp(torch.arange(0, half, dtype: float32, device: t.device) * -Math.Log(maxPeriod) / half);
        Tensor args = t.unsqueeze(1).to(float32) * freqs.unsqueeze(0);
        Tensor embedding = torch.cat([torch.cos(args), torch.sin(args)], -1);
        if (dim % 2 == 1) embedding = torch.cat([embedding, torch.zeros_like(embedding[.., ..1])], -1);
        return embedding.MoveToOuterDisposeScope();
    }

    /// <summary>Embeds times <paramref name="t"/> <c>[N]</c> → <c>[N, hidden]</c>: the sinusoidal features in float32
    /// (t in bf16 would keep only 8 bits of the time), then the MLP in the weights' dtype.</summary>
    public override Tensor forward(Tensor t)
    {
        using var scope = NewDisposeScope();
        var freq = TimestepEmbedding(t, FrequencyEmbeddingSize).to(Layers.First.weight!.dtype);
        return mlp.call(freq).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Class label → vector (<c>LabelEmbedder</c>) with label dropout for classifier-free guidance: the table has a
/// null row <c>num_classes</c> when the dropout probability is positive. In training, each label is replaced by the
/// null class with probability <c>dropout_prob</c>; <c>force_drop_ids</c> (1 = drop) overrides the random draw and
/// applies in evaluation too, as in the official code.
/// </summary>
public sealed class LabelEmbedder : nn.Module<Tensor, Tensor>
{
    /// <summary>Number of real classes; also the null label.</summary>
    public int NumClasses { get; }

    /// <summary>Training label-dropout probability.</summary>
    public double DropoutProb { get; }

#pragma warning disable IDE1006
    readonly Embedding embedding_table;
#pragma warning restore IDE1006

    /// <summary>Creates the table <c>[num_classes (+1 null row when dropout_prob &gt; 0), hidden]</c>.</summary>
    public LabelEmbedder(int numClasses, int hiddenSize, double dropoutProb, Device? device = null) : base(nameof(LabelEmbedder))
    {
        NumClasses = numClasses;
        DropoutProb = dropoutProb;
        embedding_table = nn.Embedding(numClasses + (dropoutProb > 0 ? 1 : 0), hiddenSize, device: device);
        RegisterComponents();
    }

    /// <summary>The embedding table parameter (<c>embedding_table.weight</c>), for initialisation.</summary>
    internal Tensor Table => embedding_table.weight!;

    /// <summary>
    /// <c>where(drop, num_classes, labels)</c> with <c>drop = force_drop_ids == 1</c>, or, without
    /// <paramref name="forceDropIds"/>, <c>drop = U(0,1) &lt; dropout_prob</c> drawn on the CPU from <paramref name="generator"/>
    /// (a CPU generator; else the global CPU generator) and moved to the labels' device.
    /// </summary>
    public Tensor TokenDrop(Tensor labels, Tensor? forceDropIds = null, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        Tensor drop = forceDropIds is null
            ? DeviceRandom.Rand([labels.shape[0]], generator, labels.device) < DropoutProb
            : forceDropIds.to(labels.device) == 1;
        return torch.where(drop, torch.full_like(labels, NumClasses), labels).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The official <c>forward(labels, train, force_drop_ids)</c>: drops labels when
    /// <c>(train and dropout_prob &gt; 0) or force_drop_ids is given</c>, then looks them up.
    /// </summary>
    public Tensor Embed(Tensor labels, bool train, Tensor? forceDropIds = null)
    {
        if ((train && DropoutProb > 0) || forceDropIds is not null)
        {
            using Tensor dropped = TokenDrop(labels, forceDropIds);
            return embedding_table.call(dropped);
        }
        return embedding_table.call(labels);
    }

    /// <summary>Embeds <paramref name="labels"/> <c>[N]</c> → <c>[N, hidden]</c>, dropping labels when in training mode.</summary>
    public override Tensor forward(Tensor labels) => Embed(labels, training);
}
