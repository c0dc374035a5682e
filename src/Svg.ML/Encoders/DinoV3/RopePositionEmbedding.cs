using Svg.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Encoders.DinoV3;

/// <summary>
/// Axial rotary position embedding of DINOv3 (dinov3 <c>layers/rope_position_encoding.py::RopePositionEmbedding</c>).
/// For an h × w patch grid, with coordinates c ∈ [-1, 1]² of the patch centres and P = head_dim / 4 periods:
/// <code>
///   c_y = 2 (i + ½) / h − 1,   c_x = 2 (j + ½) / w − 1          ("separate"; "min"/"max" divide by min/max(h, w))
///   θ[t, a, k] = 2π · c[t, a] / period[k]                        a ∈ {y, x}, k &lt; P
///   angles = tile( [θ_y,0..P-1, θ_x,0..P-1], 2 )                  [hw, head_dim]
///   (sin, cos) = (sin angles, cos angles)
/// </code>
/// with period[k] = base^(2k / (head_dim/2)) (or log-spaced in [min_period, max_period]). In training mode the
/// coordinates are optionally shifted, jittered per axis and rescaled (random, as the official code does); in eval
/// mode they are deterministic. Key: the buffer <c>periods</c> [head_dim/4], loaded from checkpoints when present
/// (the released ViT-S+/16 stores bf16-rounded periods).
/// </summary>
public sealed class RopePositionEmbedding : nn.Module<long, long, (Tensor Sin, Tensor Cos)>
{
    Tensor periods;   // not readonly: TorchSharp re-assigns buffer fields on device moves
    readonly DinoV3Config _config;

    /// <summary>Creates the embedding and computes the periods buffer as the official <c>_init_weights</c> does.</summary>
    public RopePositionEmbedding(DinoV3Config config) : base(nameof(RopePositionEmbedding))
    {
        _config = config;
        periods = DefaultPeriods(config);
        RegisterComponents();
    }

    /// <summary>The periods buffer [head_dim / 4] (dtype <see cref="DinoV3Config.RopeDtype"/>).</summary>
    public Tensor Periods => periods;

    /// <summary>
    /// The official initial periods, computed in <see cref="DinoV3Config.RopeDtype"/>:
    /// base ** (2 · arange(D/4) / (D/2)) with D = head_dim, or min/max-period log spacing.
    /// For head_dim 64, base 100 in fp32: 100^(k/16).
    /// </summary>
    public static Tensor DefaultPeriods(DinoV3Config config)
    {
        int dHead = config.HeadDim;
        var dtype = config.RopeDtype;
        using var scope = NewDisposeScope();
        Tensor result;
        if (config.RopeBase is double ropeBase)
        {
            var exponents = 2 * arange(dHead / 4, dtype: dtype) / (dHead / 2);   // exact in fp32
            result = pow(tensor(ropeBase, dtype: dtype), exponents);               // = base ** exponents (torch.pow(Scalar, Tensor))
        }
        else
        {
            double maxPeriod = config.RopeMaxPeriod!.Value, minPeriod = config.RopeMinPeriod!.Value;
            double ratio = maxPeriod / minPeriod;
            var exponents = linspace(0, 1, dHead / 4, dtype: dtype);
            result = pow(tensor(ratio, dtype: dtype), exponents) / ratio * maxPeriod;
        }
        return scope.MoveToOuter(result.contiguous());
    }

    /// <summary>(sin, cos), each [H·W, head_dim], for an H × W patch grid (row-major, y outer).</summary>
    public override (Tensor Sin, Tensor Cos) forward(long H, long W)
    {
        using var scope = NewDisposeScope();
        var device = periods.device;
        var dtype = _config.RopeDtype;

        // Patch-centre coordinates in [-1, 1].
        double hNorm, wNorm;
        switch (_config.RopeNormalizeCoords)
        {
            case RopeCoordinateNormalization.Max: hNorm = wNorm = Math.Max(H, W); break;
            case RopeCoordinateNormalization.Min: hNorm = wNorm = Math.Min(H, W); break;
            default: hNorm = H; wNorm = W; break;
        }
        var coordsH = arange(0.5, H, 1.0, dtype: dtype, device: device) / hNorm;    // [H]
        var coordsW = arange(0.5, W, 1.0, dtype: dtype, device: device) / wNorm;    // [W]
        var grid = meshgrid(new[] { coordsH, coordsW }, indexing: "ij");              // 2 × [H, W]
        var coords = stack(grid, dim: -1).flatten(0, 1);                              // [HW, 2] = (y, x)
        coords = 2.0 * coords - 1.0;

        if (training) coords = AugmentCoordinates(coords);

        // θ = 2π c / period, [HW, 2, D/4] → [HW, D/2] → [HW, D]
        var angles = 2 * Math.PI * coords.unsqueeze(-1) / periods.unsqueeze(0).unsqueeze(0);
        angles = angles.flatten(1, 2).tile(new long[] { 2 });
        var sin = angles.sin();
        var cos = angles.cos();
        return scope.MoveToOuter(sin, cos);
    }

    /// <summary>Training-only random coordinate augmentations, in the official order: shift, jitter, rescale (drawn from
    /// the global CPU generator on every device: <see cref="DeviceRandom"/>).</summary>
    Tensor AugmentCoordinates(Tensor coords)
    {
        var device = coords.device;
        var dtype = _config.RopeDtype;
        if (_config.RopeShiftCoords is double shift)
        {
            var shiftHw = DeviceRandom.Uniform([2], -shift, shift, null, device, dtype);
            coords = coords + shiftHw.unsqueeze(0);
        }
        if (_config.RopeJitterCoords is double jitter)
        {
            double jitterMax = Math.Log(jitter);
            var jitterHw = DeviceRandom.Uniform([2], -jitterMax, jitterMax, null, device, dtype).exp();
            coords = coords * jitterHw.unsqueeze(0);
        }
        if (_config.RopeRescaleCoords is double rescale)
        {
            double rescaleMax = Math.Log(rescale);
            var rescaleHw = DeviceRandom.Uniform([1], -rescaleMax, rescaleMax, null, device, dtype).exp();
            coords = coords * rescaleHw;
        }
        return coords;
    }

    /// <summary>rotate_half(x) = [−x₂, x₁] where x = [x₁, x₂] split in halves on the last dimension.</summary>
    public static Tensor RotateHalf(Tensor x)
    {
        var halves = x.chunk(2, dim: -1);
        using var x1 = halves[0];
        using var x2 = halves[1];
        using var negX2 = -x2;
        return cat(new[] { negX2, x1 }, dim: -1);
    }

    /// <summary>The rotation: x ⊙ cos + rotate_half(x) ⊙ sin (NeoX half-split layout).</summary>
    public static Tensor Apply(Tensor x, Tensor sin, Tensor cos)
    {
        using var rotated = RotateHalf(x);
        using var a = x * cos;
        using var b = rotated * sin;
        return a + b;
    }
}
