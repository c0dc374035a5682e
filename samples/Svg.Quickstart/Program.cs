// Svg.Quickstart — the SVG pipeline end to end, offline, on two CPU cores:
//   Fashion-MNIST → frozen ResNet18 (ML.NET's ImageNet model) + residual ViT → SVG latent → LDM decoder   (stage 1)
//   SVG latents → DiT trained with rectified flow                                                        (stage 2)
//   noise → DiT (classifier-free guidance) → latent → decoder → image grid; linear probe, PSNR/SSIM, FD.
//
//   dotnet run -c Release --project samples/Svg.Quickstart [-- --help]
//
// The stages live in Pipeline/ (QuickstartPipeline.Run reads top to bottom like the paper's pipeline).
return Svg.Quickstart.QuickstartApp.Run(args);
