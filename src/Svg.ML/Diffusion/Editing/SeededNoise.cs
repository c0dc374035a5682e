using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion.Editing;

/// <summary>
/// Gaussian noise drawn per row from its own seed with a CPU generator, then moved to the device: the same noise on
/// every device and in every batch composition (the project rule for sampling noise).
/// </summary>
public static class SeededNoise
{
    /// <summary>Noise <c>[seeds.Count, ..rowShape]</c>, row i from <c>new Generator(seeds[i])</c>, on <paramref name="device"/>.</summary>
    public static Tensor Draw(IReadOnlyList<long> seeds, long[] rowShape, Device? device = null)
    {
        var rows = new Tensor[seeds.Count];
        try
        {
            long[] shape = new[] { 1L }.Concat(rowShape).ToArray();
            for (int i = 0; i < rows.Length; i++)
            {
                using var g = new Generator(unchecked((ulong)seeds[i]));
                rows[i] = torch.randn(shape, generator: g);
            }
            using var all = torch.cat(rows, 0);
            return device is null || device.type == DeviceType.CPU ? all.clone() : all.to(device);
        }
        finally { foreach (var r in rows) r?.Dispose(); }
    }
}
