using Svg.ML.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>Sizes of the PatchGAN discriminator (taming-transformers <c>NLayerDiscriminator</c> arguments).</summary>
/// <param name="InputChannels"><c>input_nc</c> (3 for RGB).</param>
/// <param name="Ndf"><c>ndf</c>: filters of the first convolution (64).</param>
/// <param name="Layers"><c>n_layers</c>: stride-2 convolutions (3 in SVG's loss, <c>disc_num_layers</c>).</param>
public sealed record NLayerDiscriminatorConfig(int InputChannels = 3, int Ndf = 64, int Layers = 3)
{
    /// <summary>SVG's discriminator: 3 layers, 64 filters, BatchNorm (no ActNorm).</summary>
    public static NLayerDiscriminatorConfig Svg { get; } = new();
}

/// <summary>
/// The PatchGAN discriminator of pix2pix as in taming-transformers (<c>taming/modules/discriminator/model.py</c>),
/// with BatchNorm (<c>use_actnorm=False</c>, SVG's setting):
/// <code>
/// main = Conv(in, ndf, 4, s2, p1) + bias, LeakyReLU(0.2)
///        [Conv(ndf·m', ndf·m, 4, s2, p1), BatchNorm, LeakyReLU(0.2)]   m = min(2ⁿ, 8), n = 1 … layers−1
///        Conv(ndf·m', ndf·m, 4, s1, p1), BatchNorm, LeakyReLU(0.2)     m = min(2^layers, 8)
///        Conv(ndf·m, 1, 4, s1, p1) + bias                               → logits [B, 1, h, w]
/// </code>
/// Keys <c>main.{i}.*</c> as in the reference <c>nn.Sequential</c> (LeakyReLUs hold indices but no weights).
/// Initialisation (<c>weights_init</c>): convolution weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02) and biases 0;
/// convolution biases keep the default initialisation. Uses the global torch generator.
/// </summary>
public sealed class NLayerDiscriminator : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Sequential main;
#pragma warning restore IDE1006

    /// <summary>The sizes.</summary>
    public NLayerDiscriminatorConfig Config { get; }

    /// <summary>Builds and initialises the discriminator.</summary>
    public NLayerDiscriminator(NLayerDiscriminatorConfig? config = null) : base(nameof(NLayerDiscriminator))
    {
        TorchRuntime.EnsureInitialized();
        Config = config ??= NLayerDiscriminatorConfig.Svg;
        if (config.InputChannels <= 0 || config.Ndf <= 0 || config.Layers < 1)
            throw new ArgumentException($"NLayerDiscriminatorConfig: sizes must be positive and Layers >= 1 ({config}).");
        int ndf = config.Ndf;
        var layers = new List<nn.Module<Tensor, Tensor>>
        {
            nn.Conv2d(config.InputChannels, ndf, 4, stride: 2, padding: 1),
            nn.LeakyReLU(0.2),
        };
        int mult = 1;
        for (int n = 1; n < config.Layers; n++)
        {
            int prev = mult;
            mult = Math.Min(1 << n, 8);
            layers.Add(nn.Conv2d(ndf * prev, ndf * mult, 4, stride: 2, padding: 1, bias: false));
            layers.Add(nn.BatchNorm2d(ndf * mult));
            layers.Add(nn.LeakyReLU(0.2));
        }
        int last = mult;
        mult = Math.Min(1 << config.Layers, 8);
        layers.Add(nn.Conv2d(ndf * last, ndf * mult, 4, stride: 1, padding: 1, bias: false));
        layers.Add(nn.BatchNorm2d(ndf * mult));
        layers.Add(nn.LeakyReLU(0.2));
        layers.Add(nn.Conv2d(ndf * mult, 1, 4, stride: 1, padding: 1));
        main = nn.Sequential(layers.Select((m, i) => (i.ToString(System.Globalization.CultureInfo.InvariantCulture), m)));
        RegisterComponents();
        InitializeWeights();
    }

    /// <summary>The reference <c>weights_init</c>: conv weights N(0, 0.02); BatchNorm weight N(1, 0.02), bias 0.</summary>
    public void InitializeWeights()
    {
        using var _ = no_grad();
        foreach (var module in main.children())
            switch (module)
            {
                case Conv2d conv:
                    conv.weight!.normal_(0.0, 0.02);
                    break;
                case BatchNorm2d norm:
                    norm.weight!.normal_(1.0, 0.02);
                    norm.bias!.zero_();
                    break;
            }
    }

    /// <summary>Patch logits [B, 1, h, w] for images [B, C, H, W] (in [-1, 1] in SVG's loss).</summary>
    public override Tensor forward(Tensor x) => main.call(x);
}
