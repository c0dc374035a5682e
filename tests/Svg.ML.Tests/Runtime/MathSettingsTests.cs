using Svg.ML.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace Svg.ML.Tests.Runtime;

public class MathSettingsTests
{
    /// <summary>TF32 switches: set for a CUDA device (libtorch keeps them as process flags, so a CPU build can check
    /// them), left alone for the CPU.</summary>
    [Fact]
    public void Tf32_IsSetForCuda_AndUntouchedOnTheCpu()
    {
        TorchRuntime.EnsureInitialized();
        bool matmul = backends.cuda.matmul.allow_tf32, cudnn = backends.cudnn.allow_tf32;
        var cuda = new Device(DeviceType.CUDA, 0);
        try
        {
            Assert.True(MathSettings.ConfigureTf32(cuda, false));
            Assert.False(backends.cuda.matmul.allow_tf32);
            Assert.False(backends.cudnn.allow_tf32);
            Assert.False(MathSettings.Tf32Enabled);
            Assert.True(MathSettings.ConfigureTf32(cuda));          // the default: on
            Assert.True(backends.cuda.matmul.allow_tf32);
            Assert.True(backends.cudnn.allow_tf32);
            Assert.False(MathSettings.ConfigureTf32(CPU, false));   // no-op on the CPU
            Assert.True(MathSettings.Tf32Enabled);
        }
        finally
        {
            backends.cuda.matmul.allow_tf32 = matmul;
            backends.cudnn.allow_tf32 = cudnn;
        }
    }

    [Fact]
    public void ComputeType_OfEachPrecision()
    {
        Assert.Equal(ScalarType.Float32, Precision.Fp32.ComputeType());
        Assert.Equal(ScalarType.BFloat16, Precision.Bf16.ComputeType());
    }
}
