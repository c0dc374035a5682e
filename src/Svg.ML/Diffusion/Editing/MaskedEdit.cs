using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Svg.ML.Diffusion.Editing;

/// <summary>Which part of the image a masked edit regenerates.</summary>
public enum EditMode
{
    /// <summary>Regenerate the region (the box) under the target class; keep the rest.</summary>
    EditInside,
    /// <summary>Keep the region (the box); regenerate everything around it under the target class.</summary>
    KeepInside,
}

/// <summary>
/// Settings of a masked edit (defaults: the paper's editing experiments — 100 Euler steps, CFG 4.0, time shift 0.4;
/// the edit time, blur and fade are not given in the paper and are this library's choices).
/// </summary>
/// <param name="Steps">Steps S of the whole time grid; the edit runs the steps from the edit time to t = 1.</param>
/// <param name="CfgScale">Guidance scale of the forward pass under the target class.</param>
/// <param name="TimeShift">Time-grid shift (see <see cref="SamplerOptions.TimeShift"/>).</param>
/// <param name="EditTime">Flow time t_edit the input is inverted to (0 = pure noise, 1 = the data): lower regenerates more.</param>
/// <param name="MaskBlur">Standard deviation, in latent grid cells, of the Gaussian blur that softens the mask (0: hard mask).</param>
/// <param name="Fade">How far the pull-back of the preserved region fades during denoising: its weight falls linearly
/// from 1 at t_edit to <c>1 − Fade</c> at the last step (0: the preserved region is the inversion trajectory at every
/// step and ends exactly at the input; larger values let the boundary harmonise).</param>
/// <param name="InversionCfg">Guidance scale of the inversion when source labels are given (1: conditional velocity alone).</param>
/// <param name="Mode">Edit inside the region or keep it and regenerate the outside.</param>
public sealed record EditOptions(
    int Steps = 100,
    double CfgScale = 4.0,
    double TimeShift = 0.4,
    double EditTime = 0.3,
    double MaskBlur = 1.0,
    double Fade = 0.3,
    double InversionCfg = 1.0,
    EditMode Mode = EditMode.EditInside)
{
    /// <summary>The forward sampler settings (Euler, constant guidance).</summary>
    [JsonIgnore]
    public SamplerOptions Sampler => new(Steps: Steps, CfgScale: CfgScale, TimeShift: TimeShift);

    internal void Validate()
    {
        if (Steps <= 0) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "Steps must be positive.");
        if (EditTime is < 0 or > 1 || double.IsNaN(EditTime)) throw new ArgumentOutOfRangeException(nameof(EditTime), EditTime, "EditTime is a flow time in [0, 1].");
        if (MaskBlur < 0 || double.IsNaN(MaskBlur)) throw new ArgumentOutOfRangeException(nameof(MaskBlur), MaskBlur, "MaskBlur must be ≥ 0.");
        if (Fade is < 0 or > 1 || double.IsNaN(Fade)) throw new ArgumentOutOfRangeException(nameof(Fade), Fade, "Fade is in [0, 1].");
    }
}

/// <summary>
/// SDEdit with trajectory inversion (the SVG paper's editing experiments), on normalised latent tokens:
/// <list type="number">
/// <item>invert the input x with Euler in reverse to t_edit, recording the trajectory (<see cref="FlowInversion"/>);</item>
/// <item>soften the edit mask m (1 = regenerate) with a 2-D Gaussian blur on the latent grid, outward only
///   (<c>m ← max(m, blur(m))</c>: the region itself stays fully regenerated);</item>
/// <item>at t_edit: <c>z = m·ε + (1 − m)·z_inv(t_edit)</c> (Gaussian noise ε inside, the inverted latent outside);</item>
/// <item>forward Euler under the target class with CFG; after each step j the preserved region is pulled back to the
///   recorded trajectory, <c>z ← k_j·z_inv(t_j) + (1 − k_j)·z</c>, with <c>k_j = (1 − m)·(1 − Fade·p_j)</c> and p_j the
///   progress (0 at t_edit, 1 at t = 1) — the mask fades during denoising.</item>
/// </list>
/// All tensors stay on the input's device; the noise is the caller's (draw it from explicit CPU generators).
/// </summary>
public sealed class MaskedEdit
{
    readonly SvgDiT _model;
    readonly FlowInversion _flow;

    /// <summary>Edits with <paramref name="model"/> (which stays the caller's).</summary>
    public MaskedEdit(SvgDiT model)
    {
        _model = model;
        _flow = new FlowInversion(model);
    }

    /// <summary>
    /// Edits the latent tokens <paramref name="x"/> <c>[B, T, C]</c> (normalised, T = h·w of the model's grid).
    /// <paramref name="region"/> <c>[B, h, w]</c> in [0, 1] marks the box (the region edited or kept, per
    /// <see cref="EditOptions.Mode"/>); <paramref name="target"/> <c>[B]</c> the new classes; <paramref name="noise"/>
    /// <c>[B, T, C]</c> the Gaussian noise of the regenerated region; <paramref name="source"/> <c>[B]</c> the input's
    /// classes for the inversion (null: unconditional inversion with the null class). Returns the edited tokens.
    /// </summary>
    public Tensor Edit(Tensor x, Tensor region, Tensor target, Tensor noise, EditOptions options, Tensor? source = null)
    {
        options.Validate();
        var config = _model.Config;
        int h = config.GridSize, w = config.GridSize;
        long b = x.shape[0];
        if (x.dim() != 3 || x.shape[1] != h * w || x.shape[2] != config.InChannels)
            throw new ArgumentException($"x must be [B, {h * w}, {config.InChannels}] tokens; got [{string.Join(", ", x.shape)}].", nameof(x));
        if (!noise.shape.SequenceEqual(x.shape)) throw new ArgumentException("noise must have the shape of x.", nameof(noise));
        if (!region.shape.SequenceEqual(new[] { b, h, (long)w }))
            throw new ArgumentException($"region must be [B, {h}, {w}] (the latent grid); got [{string.Join(", ", region.shape)}].", nameof(region));
        if (target.shape.Length != 1 || target.shape[0] != b) throw new ArgumentException("Give one target label per row.", nameof(target));
        bool hasNull = config.ClassDropoutProb > 0;
        if (source is null && !hasNull)
            throw new ArgumentException("The model has no null class (trained without label dropout): give the source labels.", nameof(source));

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var device = x.device;
        Tensor nullLabels = torch.full(b, (long)config.NullClass, dtype: int64, device: device);
        Tensor invCond = source?.to(device) ?? nullLabels;
        var invOptions = options.Sampler with { CfgScale = options.InversionCfg };
        Tensor? invNull = source is not null && hasNull && options.InversionCfg != 1 ? nullLabels : null;
        Tensor y = target.to(device);
        Tensor? yNull = hasNull && options.CfgScale != 1 ? nullLabels : null;

        Tensor edit = options.Mode == EditMode.EditInside ? region.to(float32).to(device) : 1 - region.to(float32).to(device);
        // Feathered outward only: m = max(mask, blur(mask)). A plain blur would leave the region's own cells below 1,
        // and the pull-back at every step would drag them back to the input (the edit would not happen).
        Tensor m = torch.maximum(edit, SoftMask(edit, options.MaskBlur)).reshape(b, h * w, 1);   // 1 = regenerate
        Tensor keep = 1 - m;

        using var trajectory = _flow.Invert(x, invCond, invNull, invOptions, options.EditTime);
        int k = trajectory.StartIndex, s = trajectory.Steps;
        Tensor z = m * noise.to(device) + keep * trajectory.Start;               // noise inside, inverted latent outside
        Tensor Pull(int j, Tensor zj)
        {
            double progress = (j - k) / (double)(s - k);
            Tensor c = keep * (1 - options.Fade * progress);                      // c = 1 returns the trajectory exactly
            return c * trajectory.At(j) + (1 - c) * zj;
        }
        return _flow.Integrate(z, k, y, yNull, options.Sampler, Pull).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The mask softened by a 2-D Gaussian blur of standard deviation <paramref name="sigma"/> grid cells (kernel
    /// truncated at ⌈2σ⌉ cells, normalised, edges replicated): <c>[B, h, w] → [B, h, w]</c> in [0, 1]; σ = 0 returns a copy.
    /// </summary>
    public static Tensor SoftMask(Tensor mask, double sigma)
    {
        if (sigma <= 0) return mask.to(float32).clone();
        using var scope = NewDisposeScope();
        int r = (int)Math.Ceiling(2 * sigma);
        var g = Enumerable.Range(-r, 2 * r + 1).Select(j => Math.Exp(-j * j / (2 * sigma * sigma))).ToArray();
        double sum = g.Sum();
        Tensor k1 = torch.tensor(g.Select(v => (float)(v / sum)).ToArray(), device: mask.device);
        Tensor m = mask.to(float32).unsqueeze(1);                                   // [B, 1, h, w]
        m = F.pad(m, new long[] { r, r, r, r }, PaddingModes.Replicate);
        m = F.conv2d(m, k1.view(1, 1, 1, -1));                                      // separable: along w,
        m = F.conv2d(m, k1.view(1, 1, -1, 1));                                      // then along h
        return m.squeeze(1).clamp(0, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A box given in fractions of the image (<c>0 ≤ x0 &lt; x1 ≤ 1</c>, <c>0 ≤ y0 &lt; y1 ≤ 1</c>, y downwards) as a
    /// mask <c>[h, w]</c> on the latent grid: each cell holds the fraction of its area inside the box.
    /// </summary>
    public static Tensor BoxMask(int h, int w, double x0, double y0, double x1, double y1, Device? device = null)
    {
        if (!(x0 >= 0 && x0 < x1 && x1 <= 1 && y0 >= 0 && y0 < y1 && y1 <= 1))
            throw new ArgumentException($"The box ({x0}, {y0}, {x1}, {y1}) must satisfy 0 ≤ x0 < x1 ≤ 1 and 0 ≤ y0 < y1 ≤ 1 (fractions of the image).");
        using var scope = NewDisposeScope();
        Tensor Cover(int n, double lo, double hi)
        {
            Tensor start = torch.arange(n, dtype: float64, device: device) / n;    // cell i spans [i/n, (i+1)/n]
            return ((torch.minimum(start + 1.0 / n, torch.tensor(hi, dtype: float64, device: device))
                     - torch.maximum(start, torch.tensor(lo, dtype: float64, device: device))).clamp_min(0) * n);
        }
        return (Cover(h, y0, y1).unsqueeze(1) * Cover(w, x0, x1).unsqueeze(0)).to(float32).MoveToOuterDisposeScope();
    }

    /// <summary>A pixel mask <c>[B, H, W]</c> (any size) averaged onto the latent grid <c>[B, h, w]</c>.</summary>
    public static Tensor GridMask(Tensor pixelMask, int h, int w)
    {
        using var scope = NewDisposeScope();
        return F.adaptive_avg_pool2d(pixelMask.to(float32).unsqueeze(1), new long[] { h, w }).squeeze(1).MoveToOuterDisposeScope();
    }
}
