using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// Reproducible randomness of a training run, all derived from one seed. Each use has its own stream, so that e.g. a
/// longer data set does not change the noise:
/// <list type="bullet">
/// <item>the data order: epoch e visits the samples in <c>randperm(N)</c> drawn from a generator seeded with
///   <c>Derive(seed, Order, e)</c>, so any step's batch is known without replaying earlier epochs;</item>
/// <item>the training noise (diffusion: z0, t, label dropout): one explicit CPU <see cref="Generator"/>, whose state
///   is saved in checkpoints; the draws are made on the CPU and moved to the model's device
///   (<see cref="Runtime.DeviceRandom"/>), so the same seed gives the same noise on every device;</item>
/// <item>weight initialisation: the global torch generator seeded with <c>Derive(seed, Init)</c> for the duration of
///   the construction (<see cref="WithGlobalSeed{T}"/>; the caller's global state is restored afterwards).</item>
/// </list>
/// Same seed → bitwise-equal results on the same device; across devices the noise is identical and the results agree
/// within float tolerance. Dropout inside modules draws from the device's own default generator (seeded from
/// <see cref="Global"/> on CUDA as on the CPU), so runs with dropout on CUDA repeat from the seed but resume without
/// restoring that generator's state.
/// </summary>
public static class TrainingRandom
{
    /// <summary>Stream of the per-epoch data permutations.</summary>
    public const ulong Order = 1;
    /// <summary>Stream of the training noise.</summary>
    public const ulong Noise = 2;
    /// <summary>Stream of the weight initialisation.</summary>
    public const ulong Init = 3;
    /// <summary>Stream of the global generator during training (dropout, mask token draws of stage 1).</summary>
    public const ulong Global = 4;

    /// <summary>
    /// A well-mixed 63-bit seed for (<paramref name="seed"/>, <paramref name="stream"/>, <paramref name="index"/>)
    /// (SplitMix64 finaliser applied to each input in turn).
    /// </summary>
    public static long Derive(long seed, ulong stream, long index = 0)
    {
        ulong h = Mix((ulong)seed);
        h = Mix(h ^ stream);
        h = Mix(h ^ (ulong)index);
        return (long)(h >> 1);
    }

    static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The order in which epoch <paramref name="epoch"/> visits <paramref name="count"/> samples.</summary>
    public static long[] EpochPermutation(long seed, int epoch, long count)
    {
        using var generator = new Generator((ulong)Derive(seed, Order, epoch), CPU);
        using var perm = randperm(count, generator: generator);
        return perm.data<long>().ToArray();
    }

    /// <summary>
    /// The generator of the training noise: always a CPU generator (TorchSharp 0.107 makes no device generators, and
    /// libtorch rejects a CPU generator in a CUDA draw), used through <see cref="Runtime.DeviceRandom"/>, which draws on
    /// the CPU and moves the numbers to the model's device.
    /// </summary>
    public static Generator NoiseGenerator(long seed) => new((ulong)Derive(seed, Noise), CPU);

    /// <summary>
    /// Runs <paramref name="build"/> with the global torch generator seeded by <paramref name="seed"/>, then restores the
    /// generator's previous state (so module initialisation is reproducible without disturbing the caller).
    /// </summary>
    public static T WithGlobalSeed<T>(long seed, Func<T> build)
    {
        using var saved = torch.get_rng_state();
        torch.manual_seed(seed);
        try { return build(); }
        finally { torch.set_rng_state(saved); }
    }

    /// <summary>A copy of a generator's state (a uint8 CPU tensor), e.g. for a checkpoint.</summary>
    public static Tensor GetState(Generator generator) => generator.get_state().cpu().clone();

    /// <summary>Restores a state saved by <see cref="GetState"/>.</summary>
    public static void SetState(Generator generator, Tensor state) => generator.set_state(state.to(ScalarType.Byte).cpu());
}
