using Svg.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Dense.Synthetic;

/// <summary>
/// Scenes as tensors on the CPU: <see cref="Images"/> uint8 [N, 3, S, S], <see cref="Classes"/> uint8 [N, S, S]
/// (0 = background, 1..10), <see cref="Depth"/> float32 [N, S, S] in metres. Owns the tensors.
/// </summary>
public sealed class SceneSet : IDisposable
{
    public Tensor Images { get; }
    public Tensor Classes { get; }
    public Tensor Depth { get; }

    /// <summary>Which scenes these are (generator identity and range), for feature-cache keys.</summary>
    public string Identity { get; }

    public int Count => (int)Images.shape[0];
    public int Size => (int)Images.shape[2];

    SceneSet(Tensor images, Tensor classes, Tensor depth, string identity)
    {
        Images = images.DetachFromDisposeScope();
        Classes = classes.DetachFromDisposeScope();
        Depth = depth.DetachFromDisposeScope();
        Identity = identity;
    }

    /// <summary>Stacks rendered scenes (all of one size).</summary>
    public static SceneSet From(IReadOnlyList<Scene> scenes, string identity)
    {
        if (scenes.Count == 0) throw new ArgumentException("no scenes.", nameof(scenes));
        int s = scenes[0].Size, n = scenes.Count, plane = s * s;
        if (scenes.Any(x => x.Size != s)) throw new ArgumentException("scenes of different sizes.", nameof(scenes));
        var rgb = new byte[n * 3 * plane];
        var classes = new byte[n * plane];
        var depth = new float[n * plane];
        for (int i = 0; i < n; i++)
        {
            scenes[i].Rgb.CopyTo(rgb, i * 3 * plane);
            scenes[i].Classes.CopyTo(classes, i * plane);
            scenes[i].Depth.CopyTo(depth, i * plane);
        }
        return new SceneSet(tensor(rgb, new long[] { n, 3, s, s }), tensor(classes, new long[] { n, s, s }),
                            tensor(depth, new long[] { n, s, s }), identity);
    }

    /// <summary>The images as a <see cref="LabeledImages"/> (one class, "scene") for Svg.ML's image pipelines (featurizing, autoencoder training).</summary>
    public LabeledImages ToLabeledImages() => new(Images.clone(), new long[Count], ["scene"], Identity);

    public void Dispose()
    {
        Images.Dispose();
        Classes.Dispose();
        Depth.Dispose();
    }
}
