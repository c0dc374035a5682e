using Svg.ML.Data;
using Svg.ML.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Svg.ML.PaperClaims;

/// <summary>
/// A small convolutional classifier trained here, from scratch, on the Fashion-MNIST training split — a feature network
/// for a second Fréchet distance that, unlike ResNet18, shares nothing with SVG's frozen base (the usual practice for
/// MNIST-like data, where Inception features fit poorly):
/// <code>
/// gray = mean_c(rgb) · 2 − 1                                 [B, 1, 32, 32]
/// 3 × (3×3 conv → ReLU → 2×2 max-pool): 16, 32, 64 channels  [B, 64, 4, 4]
/// features = ReLU(fc1(flatten))                              [B, 128]    ← the FD features
/// logits = fc2(features)                                     [B, classes]
/// </code>
/// </summary>
public sealed class FashionClassifier : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    readonly Conv2d conv1, conv2, conv3;
    readonly Linear fc1, fc2;
#pragma warning restore IDE1006

    /// <summary>Feature width.</summary>
    public const int FeatureDim = 128;

    /// <summary>Builds the network for 32 px images and <paramref name="classes"/> classes.</summary>
    public FashionClassifier(int classes) : base(nameof(FashionClassifier))
    {
        conv1 = nn.Conv2d(1, 16, 3, padding: 1);
        conv2 = nn.Conv2d(16, 32, 3, padding: 1);
        conv3 = nn.Conv2d(32, 64, 3, padding: 1);
        fc1 = nn.Linear(64 * 4 * 4, FeatureDim);
        fc2 = nn.Linear(FeatureDim, classes);
        RegisterComponents();
    }

    /// <summary>RGB [B, 3, 32, 32] in [0, 1] → features [B, 128].</summary>
    public Tensor Features(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        var x = rgb01.mean([1], keepdim: true) * 2 - 1;
        x = F.max_pool2d(F.relu(conv1.call(x)), 2);
        x = F.max_pool2d(F.relu(conv2.call(x)), 2);
        x = F.max_pool2d(F.relu(conv3.call(x)), 2);
        return F.relu(fc1.call(x.flatten(1))).MoveToOuterDisposeScope();
    }

    /// <summary>Class logits.</summary>
    public override Tensor forward(Tensor rgb01)
    {
        using var scope = NewDisposeScope();
        return fc2.call(Features(rgb01)).MoveToOuterDisposeScope();
    }

    /// <summary>The name reported with Fréchet distances over <see cref="Features"/>.</summary>
    public string FeatureName(double testAccuracy) =>
        FormattableString.Invariant($"Fashion-MNIST CNN trained here (3 conv + fc, {FeatureDim}-d penultimate features, test accuracy {testAccuracy * 100:F1} %)");

    /// <summary>Trains a fresh classifier (Adam 1e-3, batch 32, cross-entropy) for <paramref name="epochs"/> passes and
    /// returns it (eval mode) with its accuracy on <paramref name="test"/>.</summary>
    public static (FashionClassifier Model, double TestAccuracy) Train(LabeledImages train, LabeledImages test, int epochs, long seed, int batchSize = 32)
    {
        var model = TrainingRandom.WithGlobalSeed(TrainingRandom.Derive(seed, TrainingRandom.Init, 7), () => new FashionClassifier(train.ClassNames.Count));
        using var optimizer = optim.Adam(model.parameters(), lr: 1e-3);
        model.train();
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            foreach (var (images, labels) in train.Batches(batchSize, shuffle: true, seed: TrainingRandom.Derive(seed, TrainingRandom.Order, 100 + epoch)))
            {
                using (images) using (labels) using (NewDisposeScope())
                {
                    var loss = F.cross_entropy(model.call(images), labels);
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                }
            }
        }
        model.eval();
        long correct = 0;
        using (no_grad())
            foreach (var (images, labels) in test.Batches(256))
                using (images) using (labels)
                using (var predicted = model.call(images).argmax(1))
                using (var hits = predicted.eq(labels).sum())
                    correct += hits.item<long>();
        return (model, (double)correct / test.Count);
    }

    /// <summary>Features [N, 128] (CPU) of RGB images in [0, 1], in batches, without gradients.</summary>
    public Tensor FeaturesOf(Tensor images01, int batchSize = 256)
    {
        var parts = new List<Tensor>();
        try
        {
            using var _ = no_grad();
            for (long s = 0; s < images01.shape[0]; s += batchSize)
            {
                using var scope = NewDisposeScope();
                parts.Add(Features(images01.narrow(0, s, Math.Min(batchSize, images01.shape[0] - s))).MoveToOuterDisposeScope());
            }
            return cat(parts, 0);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }
}
