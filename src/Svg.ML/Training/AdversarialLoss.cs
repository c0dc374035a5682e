using TorchSharp;
using static TorchSharp.torch;

namespace Svg.ML.Training;

/// <summary>
/// The GAN terms of SVG's autoencoder loss (<c>LPIPSWithDiscriminatorDecoder</c>, taming-transformers'
/// <c>vqperceptual.py</c> and <c>calculate_adaptive_weight</c>):
/// <code>
/// L_D   = ½ (mean relu(1 − D(x)) + mean relu(1 + D(x̂)))                     hinge discriminator loss
/// L_G   = −mean D(x̂)                                                         generator loss
/// λ     = clamp(‖∇_w L_nll‖ / (‖∇_w L_G‖ + 1e-4), 0, 1e4) · disc_weight      w = decoder.conv_out.weight (detached)
/// L_gen = L_nll + λ · f(step) · L_G,     f(step) = disc_factor if step ≥ disc_start else 0
/// </code>
/// </summary>
public static class AdversarialLoss
{
    /// <summary>The official <c>discriminator_weight</c> (SVG: <c>disc_weight: 0.5</c>).</summary>
    public const double SvgDiscWeight = 0.5;

    /// <summary>The official <c>disc_start</c> of SVG's autoencoder config (in steps).</summary>
    public const long SvgDiscStart = 5001;

    /// <summary>Hinge loss of the discriminator: <c>½ (mean relu(1 − real) + mean relu(1 + fake))</c>.</summary>
    public static Tensor HingeDiscriminatorLoss(Tensor logitsReal, Tensor logitsFake)
    {
        using var scope = NewDisposeScope();
        var loss = 0.5 * (nn.functional.relu(1.0 - logitsReal).mean() + nn.functional.relu(1.0 + logitsFake).mean());
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>Generator loss: <c>−mean(logits_fake)</c>.</summary>
    public static Tensor GeneratorLoss(Tensor logitsFake) => -logitsFake.mean();

    /// <summary>
    /// The adaptive weight λ = clamp(‖∂nll/∂w‖₂ / (‖∂g/∂w‖₂ + 1e-4), 0, <paramref name="maxWeight"/>) ·
    /// <paramref name="discWeight"/>, detached (a scalar tensor). Both gradients are taken with the graph retained, so
    /// the caller can still back-propagate the total loss.
    /// </summary>
    /// <param name="nllLoss">The reconstruction (negative log-likelihood) loss.</param>
    /// <param name="generatorLoss">The generator loss <see cref="GeneratorLoss"/>.</param>
    /// <param name="lastLayer">The decoder's last weight (<c>decoder.conv_out.weight</c>).</param>
    /// <param name="discWeight">The <c>discriminator_weight</c> factor (SVG 0.5).</param>
    /// <param name="maxWeight">Upper clamp (1e4).</param>
    public static Tensor AdaptiveWeight(Tensor nllLoss, Tensor generatorLoss, Tensor lastLayer, double discWeight = SvgDiscWeight, double maxWeight = 1e4)
    {
        using var scope = NewDisposeScope();
        var nllGrad = torch.autograd.grad([nllLoss], [lastLayer], retain_graph: true)[0];
        var gGrad = torch.autograd.grad([generatorLoss], [lastLayer], retain_graph: true)[0];
        var weight = nllGrad.norm() / (gGrad.norm() + 1e-4);
        weight = weight.clamp(0.0, maxWeight).detach() * discWeight;
        return weight.MoveToOuterDisposeScope();
    }

    /// <summary>taming's <c>adopt_weight</c>: <paramref name="weight"/> from <paramref name="step"/> (0-based global step)
    /// ≥ <paramref name="threshold"/> on, else 0.</summary>
    public static double AdoptWeight(double weight, long step, long threshold) => step < threshold ? 0.0 : weight;
}
