using System.Globalization;

namespace Svg.ML.Diffusion;

/// <summary>How the classifier-free guidance scale evolves over the sampling steps (the official <c>cfg_mode</c>).</summary>
public enum GuidanceMode
{
    /// <summary><c>constant</c>: scale w at every step.</summary>
    Constant,
    /// <summary><c>linear</c>: <c>w_i = 1 + (w − 1)·(i + 1)/S</c>.</summary>
    Linear,
    /// <summary><c>late</c>: w when <c>(i + 1)/S &gt; 0.5</c>, else 1.</summary>
    Late,
    /// <summary><c>early-X</c>: w while the step's time <c>t &gt; X</c>, else 1.</summary>
    Early,
    /// <summary><c>cfg_star-K-R</c>: for the first K steps <c>v = −R·v_u</c> (R = 0: zero-init, z stays), then <c>(1 − w)·v_u + w·v_c</c>.</summary>
    CfgStar,
}

/// <summary>
/// A classifier-free guidance schedule, mirroring the official <c>cfg_mode</c> strings
/// (<c>constant</c>, <c>linear</c>, <c>late</c>, <c>early-X</c>, <c>cfg_star-K-R</c>; see <see cref="Parse"/>).
/// Guided velocity (v_c conditional, v_u unconditional, step i of S, evaluation time t):
/// <code>
/// constant / linear / late / early:  v = v_u + w_i·(v_c − v_u)
/// cfg_star-K-R:                      v = −R·v_u  if i &lt; K,  else  (1 − w)·v_u + w·v_c
/// </code>
/// </summary>
/// <param name="Mode">The schedule kind.</param>
/// <param name="EarlyThreshold">X of <c>early-X</c>: guidance while t &gt; X.</param>
/// <param name="CfgStarSteps">K of <c>cfg_star-K-R</c>: number of initial zero-init steps.</param>
/// <param name="CfgStarRatio">R of <c>cfg_star-K-R</c>: those steps use <c>v = −R·v_u</c>.</param>
public sealed record GuidanceSchedule(GuidanceMode Mode, double EarlyThreshold = 0, int CfgStarSteps = 0, double CfgStarRatio = 0)
{
    /// <summary>Constant guidance scale.</summary>
    public static GuidanceSchedule Constant { get; } = new(GuidanceMode.Constant);

    /// <summary>Linearly increasing scale, from <c>1 + (w−1)/S</c> to w.</summary>
    public static GuidanceSchedule Linear { get; } = new(GuidanceMode.Linear);

    /// <summary>Guidance in the second half of the steps only.</summary>
    public static GuidanceSchedule Late { get; } = new(GuidanceMode.Late);

    /// <summary>Guidance while the evaluation time t &gt; <paramref name="threshold"/> (official <c>early-X</c>).</summary>
    public static GuidanceSchedule Early(double threshold) => new(GuidanceMode.Early, EarlyThreshold: threshold);

    /// <summary>CFG-Zero* (official <c>cfg_star-K-R</c>): K steps of <c>−R·v_u</c>, then <c>(1−w)·v_u + w·v_c</c>.</summary>
    public static GuidanceSchedule CfgStar(int zeroSteps, double ratio) => new(GuidanceMode.CfgStar, CfgStarSteps: zeroSteps, CfgStarRatio: ratio);

    /// <summary>Parses an official <c>cfg_mode</c> string: <c>constant</c>, <c>linear</c>, <c>late</c>, <c>early-X</c>, <c>cfg_star-K-R</c>.</summary>
    public static GuidanceSchedule Parse(string cfgMode)
    {
        string[] parts = cfgMode.Split('-');
        var inv = CultureInfo.InvariantCulture;
        return parts[0] switch
        {
            "constant" when parts.Length == 1 => Constant,
            "linear" when parts.Length == 1 => Linear,
            "late" when parts.Length == 1 => Late,
            "early" when parts.Length == 2 => Early(double.Parse(parts[1], inv)),
            "cfg_star" when parts.Length == 3 => CfgStar(int.Parse(parts[1], inv), double.Parse(parts[2], inv)),
            _ => throw new FormatException($"Unknown cfg_mode '{cfgMode}' (expected constant, linear, late, early-X or cfg_star-K-R)."),
        };
    }

    /// <summary>The official <c>cfg_mode</c> string.</summary>
    public override string ToString() => Mode switch
    {
        GuidanceMode.Early => string.Create(CultureInfo.InvariantCulture, $"early-{EarlyThreshold}"),
        GuidanceMode.CfgStar => string.Create(CultureInfo.InvariantCulture, $"cfg_star-{CfgStarSteps}-{CfgStarRatio}"),
        GuidanceMode.Constant => "constant",
        GuidanceMode.Linear => "linear",
        _ => "late",
    };

    /// <summary>
    /// The scale <c>w_i</c> for step <paramref name="step"/> of <paramref name="steps"/> at evaluation time
    /// <paramref name="t"/>, computed in float64 as the official (cfg_star: w itself).
    /// </summary>
    public double ScaleAt(double cfg, int step, int steps, double t) => Mode switch
    {
        GuidanceMode.Constant or GuidanceMode.CfgStar => cfg,
        GuidanceMode.Late => (step + 1) / (double)steps > 0.5 ? cfg : 1.0,
        GuidanceMode.Early => t > EarlyThreshold ? cfg : 1.0,
        GuidanceMode.Linear => 1.0 + (cfg - 1.0) * ((step + 1) / (double)steps),
        _ => throw new InvalidOperationException($"Unknown guidance mode {Mode}."),
    };
}

/// <summary>
/// A guidance interval (Kynkäänniemi et al., 2024), not in the official SVG code: guidance is applied only when the
/// evaluation time lies in <c>[Low, High]</c> (flow time, 0 = noise, 1 = data); elsewhere the sampler uses the
/// conditional velocity alone and skips the unconditional evaluation. An interval covering [0, 1] is the same as none.
/// </summary>
/// <param name="Low">Lowest guided time (inclusive).</param>
/// <param name="High">Highest guided time (inclusive).</param>
public readonly record struct GuidanceInterval(double Low, double High)
{
    /// <summary>Whether guidance applies at time <paramref name="t"/>.</summary>
    public bool Contains(double t) => t >= Low && t <= High;
}
