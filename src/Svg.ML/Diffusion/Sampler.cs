using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Diffusion;

/// <summary>ODE integrator of the sampler (the official <c>mode</c>).</summary>
public enum SamplerMethod
{
    /// <summary><c>z ← z + Δt·v(z, t_i)</c>: one velocity evaluation per step.</summary>
    Euler,
    /// <summary>
    /// Heun (2nd order): <c>z̃ = z + Δt·v(z, t_i)</c>, <c>z ← z + ½Δt·(v(z, t_i) + v(z̃, t_{i+1}))</c>; two evaluations
    /// per step (the last at t = 1), both with the same step index for the guidance schedule.
    /// </summary>
    Heun,
}

/// <summary>Sampling settings (defaults: the official <c>sample_svg.py</c>: 25 Euler steps, cfg 4 constant, shift 0.15).</summary>
/// <param name="Steps">Integration steps S.</param>
/// <param name="Method">Integrator.</param>
/// <param name="CfgScale">Guidance scale w (1 = none, but still evaluates both branches when an unconditional label is given).</param>
/// <param name="Guidance">Guidance schedule (null: constant).</param>
/// <param name="Interval">Optional guidance interval in flow time (not in the official code).</param>
/// <param name="TimeShift">Time-grid shift s: <c>t_i = s·u_i / (1 + (s−1)·u_i)</c>, u = linspace(0, 1, S+1); s &lt; 1 spends more steps near the noise.</param>
public sealed record SamplerOptions(
    int Steps = 25,
    SamplerMethod Method = SamplerMethod.Euler,
    double CfgScale = 4.0,
    GuidanceSchedule? Guidance = null,
    GuidanceInterval? Interval = null,
    double TimeShift = 0.15)
{
    /// <summary>The official FID setting: 25 Euler steps, cfg 1.5 with <c>cfg_star-1-0</c>, shift 0.15.</summary>
    public static SamplerOptions Fid { get; } = new(Steps: 25, CfgScale: 1.5, Guidance: GuidanceSchedule.CfgStar(1, 0));

    /// <summary>The guidance schedule, constant when unset.</summary>
    public GuidanceSchedule ResolvedGuidance => Guidance ?? GuidanceSchedule.Constant;
}

/// <summary>
/// Observers of a sampling run (for tests and diagnostics). The tensors passed are valid only during the call
/// (they belong to the sampler's per-step dispose scope): copy with <c>.clone().DetachFromDisposeScope()</c> to keep them.
/// </summary>
public sealed class SamplerHooks
{
    /// <summary>
    /// Called once per logical model evaluation with its times <c>[B]</c> and labels <c>[B]</c>, in the official
    /// order: conditional, then unconditional (both are computed in one batched forward).
    /// </summary>
    public Action<Tensor, Tensor>? ModelCall { get; init; }

    /// <summary>Called with the step index i and the latent z entering step i (i = 0 … S−1; i = 0 gives the initial noise).</summary>
    public Action<int, Tensor>? StepStart { get; init; }
}

/// <summary>A velocity network: <c>(z [B, T, C], t [B], y [B]) → [B, T, C or 2C]</c> (a learned-sigma second half is dropped).</summary>
public delegate Tensor VelocityModel(Tensor z, Tensor t, Tensor y);

/// <summary>
/// Flow-matching ODE sampler with classifier-free guidance (the official <c>RectifiedFlow.sample</c>): integrates the
/// velocity from noise (t = 0) to data (t = 1) on the shifted time grid of <see cref="PrepareTimeSequence"/>.
/// With an unconditional label the conditional and unconditional velocities come from ONE batched forward
/// (<c>cat([z, z])</c>, <c>cat([y, y_null])</c>); without it a single conditional forward is made.
/// </summary>
public sealed class Sampler
{
    readonly VelocityModel _model;

    /// <summary>Samples with <paramref name="model"/>; label dropout is disabled during sampling whatever the model's mode.
    /// The velocity is returned in the state's dtype (a bf16 model's output is cast back: the ODE state stays float32).</summary>
    public Sampler(SvgDiT model) : this((z, t, y) =>
    {
        using var scope = NewDisposeScope();
        Tensor keep = torch.zeros_like(y);
        return model.forward(z, t, y, keep).to(z.dtype).MoveToOuterDisposeScope();
    })
    { }

    /// <summary>Samples with an arbitrary velocity network.</summary>
    public Sampler(VelocityModel model)
    {
        TorchRuntime.EnsureInitialized();
        _model = model;
    }

    /// <summary>
    /// The official <c>prepare_t_seq</c>: <c>u = linspace(0, 1, S+1)</c> in float32, each value shifted in float64
    /// (<see cref="RectifiedFlow.ShiftTime(double, double)"/>) and stored as float32; <c>Δt_i = t_{i+1} − t_i</c> in float32.
    /// </summary>
    /// <returns>t <c>[S+1]</c> (t_0 = 0, t_S = 1) and Δt <c>[S, 1]</c>.</returns>
    public static (Tensor TSeq, Tensor DtSeq) PrepareTimeSequence(int steps, double shift, Device? device = null)
    {
        TorchRuntime.EnsureInitialized();
        if (steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), "Steps must be positive.");
        using var scope = NewDisposeScope();
        float[] grid = torch.linspace(0, 1, steps + 1, dtype: float32).data<float>().ToArray();
        float[] shifted = grid.Select(u => (float)RectifiedFlow.ShiftTime((double)u, shift)).ToArray();
        Tensor tSeq = torch.tensor(shifted, dtype: float32, device: device);
        Tensor dtSeq = (tSeq[1..] - tSeq[..^1]).view(steps, 1);
        return (tSeq.MoveToOuterDisposeScope(), dtSeq.MoveToOuterDisposeScope());
    }

    /// <summary>Labels <c>[B]</c> all equal to the null class (the unconditional branch), shaped like <paramref name="cond"/>.</summary>
    public static Tensor NullLabels(Tensor cond, int nullClass) => torch.full_like(cond, nullClass);

    /// <summary>
    /// Integrates from the noise <paramref name="z0"/> <c>[B, T, C]</c> with labels <paramref name="cond"/> <c>[B]</c>;
    /// with <paramref name="nullCond"/> (e.g. <see cref="NullLabels"/>) guidance follows <paramref name="options"/>,
    /// without it the conditional velocity is used alone. Returns the final z (t = 1), in normalised feature space.
    /// </summary>
    public Tensor Sample(Tensor z0, Tensor cond, Tensor? nullCond, SamplerOptions options, SamplerHooks? hooks = null)
    {
        if (nullCond is not null && !nullCond.shape.SequenceEqual(cond.shape))
            throw new ArgumentException("nullCond must have the shape of cond.");
        using var noGrad = no_grad();
        using var run = NewDisposeScope();
        int steps = options.Steps;
        var (tSeq, dtSeq) = PrepareTimeSequence(steps, options.TimeShift, z0.device);
        float[] times = tSeq.data<float>().ToArray();
        long b = z0.shape[0];
        Tensor z = z0;
        for (int i = 0; i < steps; i++)
        {
            hooks?.StepStart?.Invoke(i, z);
            Tensor previous = z;
            using (var step = NewDisposeScope())
            {
                Tensor t = torch.full(b, times[i], dtype: float32, device: z0.device);
                Tensor dt = dtSeq[i];
                Tensor v = Velocity(z, t, times[i], i, cond, nullCond, options, hooks);
                if (options.Method == SamplerMethod.Euler)
                {
                    z = z + dt * v;                                              // z ← z + Δt·v(z, t_i)
                }
                else
                {
                    Tensor tNext = torch.full(b, times[i + 1], dtype: float32, device: z0.device);
                    Tensor zTilde = z + dt * v;                                  // predictor
                    Tensor vNext = Velocity(zTilde, tNext, times[i + 1], i, cond, nullCond, options, hooks);
                    z = z + 0.5 * dt * (v + vNext);                              // trapezoidal corrector
                }
                z.MoveToOuterDisposeScope();
            }
            if (!ReferenceEquals(previous, z0)) previous.Dispose();
        }
        return ReferenceEquals(z, z0) ? z0.clone().MoveToOuterDisposeScope() : z.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The (guided) velocity at z, time t (tensor <c>[B]</c> and its value), for step <paramref name="step"/>
    /// (also used by the editing integrators, <see cref="Editing.FlowInversion"/>).
    /// </summary>
    internal Tensor Velocity(Tensor z, Tensor t, double tValue, int step, Tensor cond, Tensor? nullCond, SamplerOptions options, SamplerHooks? hooks)
    {
        bool guided = nullCond is not null && (options.Interval is not { } interval || interval.Contains(tValue));
        if (!guided)
        {
            hooks?.ModelCall?.Invoke(t, cond);
            return VelocityOnly(_model(z, t, cond), z);
        }

        hooks?.ModelCall?.Invoke(t, cond);
        hooks?.ModelCall?.Invoke(t, nullCond!);
        Tensor both = VelocityOnly(_model(torch.cat([z, z], 0), torch.cat([t, t], 0), torch.cat([cond, nullCond!], 0)), z);
        Tensor[] halves = both.chunk(2, 0);
        Tensor vc = halves[0], vu = halves[1];

        var schedule = options.ResolvedGuidance;
        double w = schedule.ScaleAt(options.CfgScale, step, options.Steps, tValue);
        if (schedule.Mode == GuidanceMode.CfgStar)
            return step < schedule.CfgStarSteps
                ? -vu * schedule.CfgStarRatio                                   // v = −R·v_u (zero-init for R = 0)
                : (1 - w) * vu + w * vc;                                        // v = (1 − w)·v_u + w·v_c
        return vu + w * (vc - vu);                                              // v = v_u + w·(v_c − v_u)
    }

    /// <summary>Keeps the velocity half of a learned-sigma output (<c>[..., :C]</c>).</summary>
    static Tensor VelocityOnly(Tensor output, Tensor z) =>
        output.shape[2] != z.shape[2] ? output.chunk(2, 2)[0] : output;
}
