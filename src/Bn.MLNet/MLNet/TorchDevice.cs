using Microsoft.ML;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>
/// Where the estimator trains and the transformer scores, from the <see cref="MLContext"/>'s public device settings,
/// as ML.NET's own TorchSharp trainers read them: <see cref="MLContext.GpuDeviceId"/> null → the CPU; set → that CUDA
/// device, when the app's libtorch has CUDA and the device exists; otherwise the CPU with a warning in the log when
/// <see cref="MLContext.FallbackToCpu"/> is true (ML.NET's default), and an exception when it is false.
/// </summary>
internal static class TorchDevice
{
    /// <summary>The device for <paramref name="env"/>'s settings.</summary>
    /// <exception cref="InvalidOperationException">A GPU is asked for, none can be used, and falling back to the CPU is off.</exception>
    public static Device Select(IHostEnvironment env, IChannel? log)
    {
        var (gpuDeviceId, fallbackToCpu) = MLNetInternals.GetDeviceSettings(env);
        int? cuda = Choose(gpuDeviceId, fallbackToCpu, torch.cuda.is_available() ? torch.cuda.device_count() : 0,
            log is null ? null : m => log.Warning(MessageSensitivity.None, "{0}", m));
        return cuda is int index ? torch.device(DeviceType.CUDA, index) : torch.CPU;
    }

    /// <summary>
    /// The rule, given the settings and the CUDA devices libtorch sees (0: no CUDA libtorch or no GPU): the CUDA device
    /// index to run on, or null for the CPU.
    /// </summary>
    internal static int? Choose(int? gpuDeviceId, bool fallbackToCpu, int cudaDevices, Action<string>? warn)
    {
        if (gpuDeviceId is not int id)
            return null;
        if (id >= 0 && id < cudaDevices)
            return id;

        string why = cudaDevices == 0
            ? "the app's libtorch has no CUDA (it references TorchSharp-cpu, which Bn.MLNet brings) or no GPU is visible"
            : $"libtorch sees {cudaDevices} CUDA device(s), numbered 0 to {cudaDevices - 1}";
        if (fallbackToCpu)
        {
            warn?.Invoke($"BatchNormCnn: MLContext.GpuDeviceId is {id}, but {why}; running on the CPU (MLContext.FallbackToCpu is true).");
            return null;
        }

        throw new InvalidOperationException(
            $"MLContext.GpuDeviceId is {id}, but {why}, and MLContext.FallbackToCpu is false. To run on a GPU, reference a CUDA build of " +
            "TorchSharp (TorchSharp-cuda-linux or TorchSharp-cuda-windows, version 0.107.0) in place of TorchSharp-cpu, as the README's " +
            "'Devices' section describes; to run on the CPU, set MLContext.FallbackToCpu = true or leave GpuDeviceId null.");
    }
}
