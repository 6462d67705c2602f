using System.Runtime.InteropServices;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// libtorch's OpenMP threads spin while waiting for work by default. On a machine whose cores are shared with other
/// processes that spinning collapses throughput (measured on 2 shared cores: 99 images/s with 2 spinning threads, 424 with
/// passive waiting, 458 with 1 thread). This sets <c>OMP_WAIT_POLICY=PASSIVE</c> in the native environment before libtorch
/// (and its OpenMP runtime) loads, unless the user already set it.
/// </summary>
internal static partial class OpenMpWaitPolicy
{
    /// <summary>Name of the OpenMP environment variable.</summary>
    public const string Variable = "OMP_WAIT_POLICY";

    /// <summary>Call before the first TorchSharp use. Returns the policy in force.</summary>
    public static string PreferPassive()
    {
        string? current = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrEmpty(current))
        {
            return current;
        }

        if (OperatingSystem.IsWindows())
        {
            // On Windows the managed call updates the process environment the native runtime reads.
            Environment.SetEnvironmentVariable(Variable, "PASSIVE");
        }
        else
        {
            // On Unix, .NET keeps a managed copy of the environment; the OpenMP runtime reads the C library's.
            _ = SetEnv(Variable, "PASSIVE", 0);
            Environment.SetEnvironmentVariable(Variable, "PASSIVE");
        }

        return "PASSIVE";
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
