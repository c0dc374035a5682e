using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion.Editing;

/// <summary>
/// The latents of an inversion on the sampler's time grid <c>t_0 = 0 (noise) … t_S = 1 (data)</c>:
/// <c>Latents[j]</c> is z at grid index <c>StartIndex + j</c>; the last entry is the input itself (t = 1).
/// Owns its tensors.
/// </summary>
/// <param name="Latents">z at grid indices StartIndex … S, each <c>[B, T, C]</c>.</param>
/// <param name="StartIndex">The grid index k the inversion stopped at (t_k ≈ the requested edit time).</param>
/// <param name="Times">The whole grid t_0 … t_S (float32 values as the sampler uses them).</param>
public sealed record InversionTrajectory(Tensor[] Latents, int StartIndex, float[] Times) : IDisposable
{
    /// <summary>Number of integration steps S of the grid.</summary>
    public int Steps => Times.Length - 1;

    /// <summary>z at grid index <paramref name="index"/> (StartIndex ≤ index ≤ S).</summary>
    public Tensor At(int index) => Latents[index - StartIndex];

    /// <summary>The latent at the edit time (grid index <see cref="StartIndex"/>).</summary>
    public Tensor Start => Latents[0];

    /// <summary>Disposes the recorded latents.</summary>
    public void Dispose()
    {
        foreach (var t in Latents) t.Dispose();
    }
}

/// <summary>
/// Inversion of the flow ODE with Euler in reverse, and forward Euler integration from any grid index — the two halves
/// of SDEdit with trajectory inversion. The time grid is the sampler's (<see cref="Sampler.PrepareTimeSequence"/>,
/// t = 0 noise, t = 1 data), so that a forward pass over the same grid mirrors the inversion step for step:
/// <code>
/// inversion (i = S−1 … k):  z_i     = z_{i+1} − Δt_i·v(z_{i+1}, t_{i+1})     (explicit Euler, run backwards in time)
/// forward   (i = k … S−1):  z_{i+1} = z_i     + Δt_i·v(z_i, t_i)               (the sampler's Euler step)
/// </code>
/// The two evaluate v at the two ends of each step, so forward(inversion(x)) = x + O(Δt) (first order; the tests
/// measure it). Guidance follows the <see cref="SamplerOptions"/> (schedule step index i for step i).
/// </summary>
public sealed class FlowInversion
{
    readonly Sampler _sampler;

    /// <summary>Inverts and integrates with <paramref name="model"/> (label dropout off, as in sampling).</summary>
    public FlowInversion(SvgDiT model)
    {
        TorchRuntime.EnsureInitialized();
        _sampler = new Sampler(model);
    }

    /// <summary>The grid index whose time is nearest <paramref name="editTime"/> (0 = invert to noise, 1 = no steps).</summary>
    public static int StartIndex(float[] times, double editTime)
    {
        if (editTime is < 0 or > 1 || double.IsNaN(editTime))
            throw new ArgumentOutOfRangeException(nameof(editTime), editTime, "The edit time is a flow time in [0, 1] (0 = noise, 1 = data).");
        int best = 0;
        for (int i = 1; i < times.Length; i++)
            if (Math.Abs(times[i] - editTime) < Math.Abs(times[best] - editTime)) best = i;
        return best;
    }

    /// <summary>
    /// Inverts the data latents <paramref name="x"/> <c>[B, T, C]</c> (normalised tokens, t = 1) back to the grid
    /// time nearest <paramref name="editTime"/>, recording every latent on the way. <paramref name="cond"/> are the
    /// labels the velocity is conditioned on (the null class for an unconditional inversion); with
    /// <paramref name="nullCond"/> guidance follows <paramref name="options"/>. Only Euler is defined.
    /// </summary>
    public InversionTrajectory Invert(Tensor x, Tensor cond, Tensor? nullCond, SamplerOptions options, double editTime)
    {
        CheckEuler(options);
        using var noGrad = no_grad();
        var (tSeq, dtSeq) = Sampler.PrepareTimeSequence(options.Steps, options.TimeShift, x.device);
        using (tSeq)
        using (dtSeq)
        {
            float[] times = tSeq.data<float>().ToArray();
            int k = StartIndex(times, editTime);
            int s = options.Steps;
            var latents = new Tensor[s - k + 1];
            latents[s - k] = x.clone().DetachFromDisposeScope();
            try
            {
                for (int i = s - 1; i >= k; i--)
                {
                    using var step = NewDisposeScope();
                    Tensor next = latents[i + 1 - k];
                    Tensor t = torch.full(x.shape[0], times[i + 1], dtype: float32, device: x.device);
                    Tensor v = _sampler.Velocity(next, t, times[i + 1], i, cond, nullCond, options, null);
                    latents[i - k] = (next - dtSeq[i] * v).DetachFromDisposeScope();    // z_i = z_{i+1} − Δt_i·v(z_{i+1}, t_{i+1})
                }
            }
            catch
            {
                foreach (var l in latents) l?.Dispose();
                throw;
            }
            return new InversionTrajectory(latents, k, times);
        }
    }

    /// <summary>
    /// Integrates <paramref name="z"/> (the latent at grid index <paramref name="startIndex"/>) forward to t = 1 with
    /// Euler under <paramref name="cond"/> (guided with <paramref name="nullCond"/> per <paramref name="options"/>).
    /// <paramref name="afterStep"/>, when given, maps the latent reached at each grid index i + 1 (e.g. to pull a
    /// region back to a recorded trajectory); its result is owned by the integrator. Returns z at t = 1.
    /// </summary>
    public Tensor Integrate(Tensor z, int startIndex, Tensor cond, Tensor? nullCond, SamplerOptions options, Func<int, Tensor, Tensor>? afterStep = null)
    {
        CheckEuler(options);
        using var noGrad = no_grad();
        using var run = NewDisposeScope();
        var (tSeq, dtSeq) = Sampler.PrepareTimeSequence(options.Steps, options.TimeShift, z.device);
        float[] times = tSeq.data<float>().ToArray();
        if (startIndex < 0 || startIndex > options.Steps)
            throw new ArgumentOutOfRangeException(nameof(startIndex), startIndex, $"The start index is a grid index in [0, {options.Steps}].");
        Tensor current = z.alias();
        for (int i = startIndex; i < options.Steps; i++)
        {
            Tensor previous = current;
            using (var step = NewDisposeScope())
            {
                Tensor t = torch.full(z.shape[0], times[i], dtype: float32, device: z.device);
                Tensor v = _sampler.Velocity(current, t, times[i], i, cond, nullCond, options, null);
                Tensor next = current + dtSeq[i] * v;                                // z_{i+1} = z_i + Δt_i·v(z_i, t_i)
                if (afterStep is not null) next = afterStep(i + 1, next);
                current = next.MoveToOuterDisposeScope();
            }
            previous.Dispose();
        }
        return current.MoveToOuterDisposeScope();
    }

    static void CheckEuler(SamplerOptions options)
    {
        if (options.Method != SamplerMethod.Euler)
            throw new ArgumentException("Inversion and editing integrate with Euler only (SamplerOptions.Method = Euler).", nameof(options));
        if (options.Steps <= 0) throw new ArgumentOutOfRangeException(nameof(options), "Steps must be positive.");
    }
}
