using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>
/// Per-channel normalisation of SVG latent tokens for the diffusion model (the official <c>dinov3_sp_stats.pt</c>:
/// <c>dinov3_sp_mean</c>, <c>dinov3_sp_std</c>, both <c>[1, 1, C]</c>):
/// <code>
/// normalise:    x̂ = (x − mean) / std        before training / encoding into the diffusion space
/// denormalise:  x  = x̂ · std + mean          after sampling, before the decoder
/// </code>
/// Tokens are <c>[B, T, C]</c>. The instance owns its two tensors (dispose it).
/// </summary>
public sealed class FeatureNormalizer : IDisposable
{
    /// <summary>State-dict key of the mean in the official statistics file.</summary>
    public const string OfficialMeanKey = "dinov3_sp_mean";

    /// <summary>State-dict key of the standard deviation in the official statistics file.</summary>
    public const string OfficialStdKey = "dinov3_sp_std";

    /// <summary>Per-channel mean <c>[1, 1, C]</c> (float32).</summary>
    public Tensor Mean { get; }

    /// <summary>Per-channel standard deviation <c>[1, 1, C]</c> (float32).</summary>
    public Tensor Std { get; }

    /// <summary>Number of channels C.</summary>
    public long Channels => Mean.shape[^1];

    /// <summary>Creates a normaliser from copies of <paramref name="mean"/> and <paramref name="std"/> (any shape with C elements).</summary>
    public FeatureNormalizer(Tensor mean, Tensor std)
    {
        TorchRuntime.EnsureInitialized();
        if (mean.numel() != std.numel())
            throw new ArgumentException($"mean ({mean.numel()}) and std ({std.numel()}) must have the same number of channels.");
        Mean = mean.detach().to(float32).reshape(1, 1, -1).clone().DetachFromDisposeScope();
        Std = std.detach().to(float32).reshape(1, 1, -1).clone().DetachFromDisposeScope();
    }

    /// <summary>The identity normaliser (mean 0, std 1) for <paramref name="channels"/> channels.</summary>
    public static FeatureNormalizer Identity(int channels)
    {
        TorchRuntime.EnsureInitialized();
        using Tensor zeros = torch.zeros(channels), ones = torch.ones(channels);
        return new FeatureNormalizer(zeros, ones);
    }

    /// <summary>From a state dict holding <paramref name="meanKey"/> and <paramref name="stdKey"/> (default: the official keys).</summary>
    public static FeatureNormalizer FromStateDict(IReadOnlyDictionary<string, Tensor> stats, string meanKey = OfficialMeanKey, string stdKey = OfficialStdKey)
    {
        if (!stats.TryGetValue(meanKey, out var mean) || !stats.TryGetValue(stdKey, out var std))
            throw new KeyNotFoundException($"Feature statistics need '{meanKey}' and '{stdKey}'; found: {string.Join(", ", stats.Keys)}.");
        return new FeatureNormalizer(mean, std);
    }

    /// <summary>
    /// Statistics of <paramref name="tokens"/> <c>[B, T, C]</c>: per-channel mean and unbiased standard deviation
    /// over all tokens of all samples.
    /// </summary>
    public static FeatureNormalizer Fit(Tensor tokens)
    {
        TorchRuntime.EnsureInitialized();
        using var scope = NewDisposeScope();
        Tensor flat = tokens.detach().to(float32).reshape(-1, tokens.shape[^1]);
        return new FeatureNormalizer(flat.mean([0]), flat.std(0, unbiased: true));
    }

    /// <summary><c>(x − mean) / std</c>, on <paramref name="x"/>'s device.</summary>
    public Tensor Normalize(Tensor x)
    {
        var (mean, std) = On(x.device);
        return (x - mean) / std;
    }

    /// <summary><c>x · std + mean</c>, on <paramref name="x"/>'s device.</summary>
    public Tensor Denormalize(Tensor x)
    {
        var (mean, std) = On(x.device);
        return x * std + mean;
    }

    /// <summary>The statistics on <paramref name="device"/>: copied there once, not at every call.</summary>
    (Tensor Mean, Tensor Std) On(Device device)
    {
        if (device.type == DeviceType.CPU) return (Mean, Std);
        lock (_onDevice)
        {
            string key = device.ToString();
            if (!_onDevice.TryGetValue(key, out var pair))
                _onDevice[key] = pair = (Mean.to(device).DetachFromDisposeScope(), Std.to(device).DetachFromDisposeScope());
            return pair;
        }
    }
    readonly Dictionary<string, (Tensor Mean, Tensor Std)> _onDevice = new();

    /// <summary>The statistics under the official keys (copies), e.g. for saving.</summary>
    public Dictionary<string, Tensor> ToStateDict() => new()
    {
        [OfficialMeanKey] = Mean.clone(),
        [OfficialStdKey] = Std.clone(),
    };

    /// <inheritdoc/>
    public void Dispose()
    {
        Mean.Dispose();
        Std.Dispose();
        foreach (var (m, sd) in _onDevice.Values) { m.Dispose(); sd.Dispose(); }
        _onDevice.Clear();
    }
}
