using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// Entry point of the test assembly when run as a program (<c>dotnet exec Bn.MLNet.Tests.dll ...</c>), so tests can
/// load saved models in a fresh process without a helper project. The test host never calls it.
/// </summary>
public static class ChildProcessProgram
{
    /// <summary>Commands: <c>probe &lt;model.zip&gt;</c>, <c>bare &lt;model.zip&gt;</c>.</summary>
    public static int Main(string[] args)
    {
        try
        {
            switch (args)
            {
                case ["probe", var path]:
                {
                    ProbeTransformer.EnsureRegistered();
                    var model = new MLContext(seed: 0).Model.Load(path, out _);
                    var probe = (ProbeTransformer)model;
                    Console.WriteLine(string.Join(" ", probe.Values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + " " + probe.Side);
                    return 0;
                }
                case ["bare", var path]:
                {
                    // Touches nothing of Bn.MLNet before loading.
                    var model = new MLContext(seed: 0).Model.Load(path, out _);
                    Console.WriteLine(model.GetType().FullName);
                    return 0;
                }
                default:
                    Console.Error.WriteLine("usage: probe|bare <model.zip>");
                    return 2;
            }
        }
        catch (Exception e)
        {
            Console.Error.WriteLine(e);
            return 1;
        }
    }

    /// <summary>Runs this assembly as a child process and returns (exit code, stdout, stderr).</summary>
    internal static (int ExitCode, string Stdout, string Stderr) Run(params string[] args)
    {
        var dll = typeof(ChildProcessProgram).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("child process did not finish in 2 minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
